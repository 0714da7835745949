import DepotApp
import Logging
import Testing

@Suite("Settings")
struct SettingsTests {
    @Test("defaults are the contract's")
    func defaults() throws {
        let settings = try Settings.resolve(environment: [:])
        #expect(settings.amqpURL == "amqp://guest:guest@127.0.0.1:5672/%2F")
        #expect(settings.databaseURL == "postgres://depot@127.0.0.1:5432/depot")
        #expect(settings.databaseReadURL == settings.databaseURL)
        #expect(settings.httpPort == 8080)
        #expect(settings.confirmTimeout == .seconds(5))
        #expect(settings.queueType == .classic)
        #expect(settings.jwtSecret == nil)
    }

    @Test("a flag beats the environment, which beats the default")
    func precedence() throws {
        let settings = try Settings.resolve(
            flags: ["DEPOT_HTTP_PORT": "9000"], environment: ["DEPOT_HTTP_PORT": "8081", "DEPOT_LOG_LEVEL": "debug"])
        #expect(settings.httpPort == 9000)
        #expect(settings.logLevel == .debug)
    }

    @Test(
        "each bad value names its variable",
        arguments: [
            ("DEPOT_AMQP_URL", "http://nope"), ("DEPOT_DATABASE_URL", "mysql://x"), ("DEPOT_DATABASE_READ_URL", "x"),
            ("DEPOT_DATABASE_URL", "postgres://a:5432,b:5432/depot?target_session_attrs=read_write"),
            ("DEPOT_DATABASE_READ_URL", "postgres://a,b/depot?target_session_attrs=standby-preferred"),
            ("DEPOT_HTTP_PORT", "eighty"), ("DEPOT_LOG_LEVEL", "loud"), ("DEPOT_LOG_FORMAT", "xml"),
            ("DEPOT_PREFETCH", "0"),
            ("DEPOT_CONFIRM_TIMEOUT", "5 parsecs"), ("DEPOT_ADMIN_PORT", "-1"), ("DEPOT_QUEUE_TYPE", "stream"),
            ("DEPOT_DATABASE_POOL_SIZE", "0"), ("DEPOT_DATABASE_POOL_SIZE", "lots"),
            ("DEPOT_PAYMENT_TIMEOUT", "soon"), ("DEPOT_RATE_LIMIT", "100"), ("DEPOT_RATE_LIMIT", "5/s,burst=0"),
            ("DEPOT_JWT_SECRET", "short"),
        ])
    func badValue(variable: String, value: String) {
        do {
            _ = try Settings.resolve(environment: [variable: value])
            Issue.record("\(variable)=\(value) was accepted")
        } catch {
            #expect(error.setting == variable)
            #expect("\(error)".hasPrefix("\(variable): "))
            #expect(!"\(error)".contains("\n"))
        }
    }

    @Test("several database hosts with target_session_attrs are accepted")
    func multiHostDatabaseURLs() throws {
        let settings = try Settings.resolve(environment: [
            "DEPOT_DATABASE_URL": "postgres://depot@db1:5432,db2:5433/depot?target_session_attrs=read-write",
            "DEPOT_DATABASE_READ_URL": "postgresql://depot@db2:5433,db1:5432/depot?target_session_attrs=prefer-standby",
        ])
        #expect(settings.databaseURL.hasSuffix("read-write"))
        #expect(settings.databaseReadURL.hasSuffix("prefer-standby"))
    }

    @Test("durations read ms, s, m, h and combinations")
    func durations() throws {
        #expect(try parseDuration("500ms") == .milliseconds(500))
        #expect(try parseDuration("5s") == .seconds(5))
        #expect(try parseDuration("30m") == .seconds(1800))
        #expect(try parseDuration("24h") == .seconds(86_400))
        #expect(try parseDuration("1h30m") == .seconds(5400))
        #expect(throws: ConfigurationError.self) { try parseDuration("5") }
        #expect(throws: ConfigurationError.self) { try parseDuration("") }
        #expect(throws: ConfigurationError.self) { try parseDuration("fast") }
    }
}

@Test("DEPOT_RATE_LIMIT reads rate and burst, and 0 turns it off")
func rateLimitSetting() throws {
    #expect(try Settings.resolve(environment: [:]).rateLimit! == (100, 200))
    #expect(try Settings.resolve(environment: ["DEPOT_RATE_LIMIT": "5/s"]).rateLimit! == (5, 10))
    #expect(try Settings.resolve(environment: ["DEPOT_RATE_LIMIT": "0"]).rateLimit == nil)
}
