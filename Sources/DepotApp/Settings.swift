import AMQP
import Foundation
import Logging
import Postgres

/// A setting that cannot be used; the process stops with exit status 2 and this one line.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var setting: String
    public var problem: String
    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }
    public var description: String { "\(setting): \(problem)" }
}

/// Depot's configuration (docs/interface.md §2), resolved once: flag, then `DEPOT_*` variable, then default.
public struct Settings: Sendable {
    public var amqpURL: String
    public var databaseURL: String
    public var databaseReadURL: String
    public var httpHost: String
    public var httpPort: Int
    public var jwtSecret: String?
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var prefetch: UInt16
    public var confirmTimeout: Duration
    public var adminPort: Int?
    public var queueType: QueueType
    /// How long a reserved order waits for its payment before it is cancelled.
    public var paymentTimeout: Duration
    /// How long a graceful shutdown may take before the process stops anyway.
    public var shutdownGrace: Duration
    /// Delays before each retry of a failed message; after the last, it is dead-lettered.
    public var retryDelays: [Duration]
    /// Requests per second and burst per caller at the edge; nil: no limit.
    public var rateLimit: (rate: Double, burst: Double)?
    /// PostgreSQL connections this process may hold, listeners included; nil: 8 for each
    /// component it runs (see `ConnectionBudget`).
    public var databasePoolSize: Int?
    /// The RabbitMQ management API (`http://user:pass@host:15672`), for `depot status`'s rates.
    public var managementURL: String?

    public enum LogFormat: String, Sendable { case json, text }
    public enum QueueType: String, Sendable { case classic, quorum }

    /// Every variable Depot reads, with its default (nil: no default).
    public static let defaults: [(variable: String, value: String?)] = [
        ("DEPOT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        ("DEPOT_DATABASE_URL", "postgres://depot@127.0.0.1:5432/depot"),
        ("DEPOT_DATABASE_READ_URL", nil),
        ("DEPOT_HTTP_HOST", "127.0.0.1"),
        ("DEPOT_HTTP_PORT", "8080"),
        ("DEPOT_JWT_SECRET", nil),
        ("DEPOT_LOG_LEVEL", "info"),
        ("DEPOT_LOG_FORMAT", "json"),
        ("DEPOT_PREFETCH", "64"),
        ("DEPOT_CONFIRM_TIMEOUT", "5s"),
        ("DEPOT_ADMIN_PORT", nil),
        ("DEPOT_QUEUE_TYPE", "classic"),
        ("DEPOT_PAYMENT_TIMEOUT", "30s"),
        ("DEPOT_RATE_LIMIT", "100/s,burst=200"),
        ("DEPOT_RETRY_DELAYS", "500ms,2s,10s,30s,60s"),
        ("DEPOT_SHUTDOWN_GRACE", "30s"),
        ("DEPOT_DATABASE_POOL_SIZE", nil),
        ("DEPOT_MANAGEMENT_URL", nil),
    ]

    /// Resolves every setting. `flags` maps a variable name to a command-line value.
    public static func resolve(
        flags: [String: String] = [:], environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> Settings {
        func value(_ variable: String) -> String? {
            if let flag = flags[variable] { return flag }
            if let env = environment[variable], !env.isEmpty { return env }
            return defaults.first { $0.variable == variable }?.value ?? nil
        }
        func required(_ variable: String) -> String { value(variable)! }

        let amqpURL = required("DEPOT_AMQP_URL")
        do { _ = try AMQPEndpoint.list(amqpURL) } catch {
            throw ConfigurationError(
                setting: "DEPOT_AMQP_URL",
                problem: "not a usable amqp:// URL (\((error as? AMQPError)?.replyText ?? "invalid"))")
        }
        let databaseURL = required("DEPOT_DATABASE_URL")
        try checkPostgresURL(databaseURL, setting: "DEPOT_DATABASE_URL")
        let readURL = value("DEPOT_DATABASE_READ_URL") ?? databaseURL
        try checkPostgresURL(readURL, setting: "DEPOT_DATABASE_READ_URL")

        guard let port = Int(required("DEPOT_HTTP_PORT")), (0...65535).contains(port) else {
            throw ConfigurationError(
                setting: "DEPOT_HTTP_PORT", problem: "must be a port number, not '\(required("DEPOT_HTTP_PORT"))'")
        }
        guard let level = Logger.Level(rawValue: required("DEPOT_LOG_LEVEL").lowercased()) else {
            throw ConfigurationError(
                setting: "DEPOT_LOG_LEVEL",
                problem: "must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard let format = LogFormat(rawValue: required("DEPOT_LOG_FORMAT").lowercased()) else {
            throw ConfigurationError(setting: "DEPOT_LOG_FORMAT", problem: "must be json or text")
        }
        guard let prefetch = UInt16(required("DEPOT_PREFETCH")), prefetch > 0 else {
            throw ConfigurationError(setting: "DEPOT_PREFETCH", problem: "must be a whole number from 1 to 65535")
        }
        let confirmTimeout: Duration
        do { confirmTimeout = try parseDuration(required("DEPOT_CONFIRM_TIMEOUT")) } catch {
            throw ConfigurationError(setting: "DEPOT_CONFIRM_TIMEOUT", problem: error.problem)
        }
        var adminPort: Int?
        if let text = value("DEPOT_ADMIN_PORT") {
            guard let port = Int(text), (0...65535).contains(port) else {
                throw ConfigurationError(setting: "DEPOT_ADMIN_PORT", problem: "must be a port number, not '\(text)'")
            }
            adminPort = port
        }
        guard let queueType = QueueType(rawValue: required("DEPOT_QUEUE_TYPE").lowercased()) else {
            throw ConfigurationError(setting: "DEPOT_QUEUE_TYPE", problem: "must be classic or quorum")
        }
        let paymentTimeout: Duration
        do { paymentTimeout = try parseDuration(required("DEPOT_PAYMENT_TIMEOUT")) } catch {
            throw ConfigurationError(setting: "DEPOT_PAYMENT_TIMEOUT", problem: error.problem)
        }
        let rateLimit = try parseRateLimit(required("DEPOT_RATE_LIMIT"))
        let shutdownGrace: Duration
        do { shutdownGrace = try parseDuration(required("DEPOT_SHUTDOWN_GRACE")) } catch {
            throw ConfigurationError(setting: "DEPOT_SHUTDOWN_GRACE", problem: error.problem)
        }
        var retryDelays: [Duration] = []
        for part in required("DEPOT_RETRY_DELAYS").split(separator: ",") {
            do { retryDelays.append(try parseDuration(String(part))) } catch {
                throw ConfigurationError(
                    setting: "DEPOT_RETRY_DELAYS",
                    problem: "a comma-separated list of durations such as 500ms,2s,10s (\(error.problem))")
            }
        }
        guard !retryDelays.isEmpty, retryDelays.allSatisfy({ $0 >= .milliseconds(1) }) else {
            throw ConfigurationError(setting: "DEPOT_RETRY_DELAYS", problem: "needs at least one delay of 1ms or more")
        }
        var poolSize: Int?
        if let text = value("DEPOT_DATABASE_POOL_SIZE") {
            guard let size = Int(text), (1...10_000).contains(size) else {
                throw ConfigurationError(
                    setting: "DEPOT_DATABASE_POOL_SIZE",
                    problem: "must be a whole number of connections from 1 to 10000, not '\(text)'")
            }
            poolSize = size
        }
        if let secret = value("DEPOT_JWT_SECRET"), secret.utf8.count < 32 {
            throw ConfigurationError(
                setting: "DEPOT_JWT_SECRET", problem: "must be at least 32 bytes (an HS256 key as long as its hash)")
        }
        return Settings(
            amqpURL: amqpURL, databaseURL: databaseURL, databaseReadURL: readURL, httpHost: required("DEPOT_HTTP_HOST"),
            httpPort: port, jwtSecret: value("DEPOT_JWT_SECRET"), logLevel: level, logFormat: format,
            prefetch: prefetch,
            confirmTimeout: confirmTimeout, adminPort: adminPort, queueType: queueType,
            paymentTimeout: paymentTimeout, shutdownGrace: shutdownGrace, retryDelays: retryDelays,
            rateLimit: rateLimit,
            databasePoolSize: poolSize, managementURL: value("DEPOT_MANAGEMENT_URL"))
    }

    private static func checkPostgresURL(_ url: String, setting: String) throws(ConfigurationError) {
        do { _ = try PostgresConfiguration(url: url) } catch {
            throw ConfigurationError(
                setting: setting,
                problem: "not a usable postgres:// URL (\((error as? PostgresError)?.message ?? "invalid"))")
        }
    }
}

/// Reads `100/s,burst=200` (burst defaults to twice the rate) or `0` (no limit).
func parseRateLimit(_ text: String) throws(ConfigurationError) -> (rate: Double, burst: Double)? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if trimmed == "0" || trimmed == "off" { return nil }
    let parts = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard let first = parts.first, first.hasSuffix("/s"), let rate = Double(first.dropLast(2)), rate > 0 else {
        throw ConfigurationError(
            setting: "DEPOT_RATE_LIMIT", problem: "must look like 100/s,burst=200, or 0 to turn it off")
    }
    var burst = rate * 2
    if parts.count == 2 {
        guard parts[1].hasPrefix("burst="), let value = Double(parts[1].dropFirst(6)), value >= 1 else {
            throw ConfigurationError(
                setting: "DEPOT_RATE_LIMIT", problem: "burst must be a number of at least 1, as in 100/s,burst=200")
        }
        burst = value
    } else if parts.count > 2 {
        throw ConfigurationError(
            setting: "DEPOT_RATE_LIMIT", problem: "must look like 100/s,burst=200, or 0 to turn it off")
    }
    return (rate, burst)
}

/// Reads `500ms`, `5s`, `30m`, `24h` (and combinations such as `1h30m`).
public func parseDuration(_ text: String) throws(ConfigurationError) -> Duration {
    let units: [(String, Duration)] = [
        ("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600)),
    ]
    var rest = Substring(text.trimmingCharacters(in: .whitespaces))
    var total = Duration.zero
    guard !rest.isEmpty else { throw ConfigurationError(setting: "duration", problem: "empty duration") }
    while !rest.isEmpty {
        let digits = rest.prefix { $0.isNumber || $0 == "." }
        guard !digits.isEmpty, let amount = Double(digits) else {
            throw ConfigurationError(
                setting: "duration", problem: "'\(text)' is not a duration such as 500ms, 5s, 30m or 24h")
        }
        rest = rest.dropFirst(digits.count)
        guard
            let (suffix, unit) = units.first(where: { rest.hasPrefix($0.0) && !(($0.0 == "m") && rest.hasPrefix("ms")) }
            )
        else {
            throw ConfigurationError(setting: "duration", problem: "'\(text)' needs a unit: ms, s, m or h")
        }
        rest = rest.dropFirst(suffix.count)
        total += unit * amount
    }
    return total
}
