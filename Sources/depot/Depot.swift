import ArgumentParser
import DepotApp
import Foundation

/// The one executable: a subcommand per component and operator task (docs/interface.md §1 and §6).
@main
struct Depot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depot",
        abstract: "Event-driven order processing over RabbitMQ and PostgreSQL.",
        subcommands: [
            All.self, Edge.self, Orders.self, Inventory.self, Payments.self, Projector.self,
            Migrate.self, Status.self, Replay.self, DLQ.self, Events.self, Token.self,
        ])

    /// Exit statuses per docs/interface.md §6: 0 success, 1 failure, 2 bad usage or configuration.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("depot: \(error)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options every subcommand that talks to the broker or the database shares: one flag per
/// `DEPOT_*` setting (a flag beats the variable, which beats the default).
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("amqp-url"), help: "Broker URL(s), comma-separated (DEPOT_AMQP_URL).") var amqpURL:
        String?
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (DEPOT_DATABASE_URL).") var databaseURL: String?
    @Option(
        name: .customLong("database-read-url"), help: "PostgreSQL URL for the edge's reads (DEPOT_DATABASE_READ_URL).")
    var databaseReadURL: String?
    @Option(
        name: .customLong("database-pool-size"),
        help: "PostgreSQL connections this process may hold (DEPOT_DATABASE_POOL_SIZE).")
    var databasePoolSize: String?
    @Option(name: .customLong("http-host"), help: "The edge's address (DEPOT_HTTP_HOST).") var httpHost: String?
    @Option(name: .customLong("http-port"), help: "The edge's port (DEPOT_HTTP_PORT).") var httpPort: String?
    @Option(name: .customLong("jwt-secret"), help: "HS256 key for bearer tokens, 32 bytes or more (DEPOT_JWT_SECRET).")
    var jwtSecret: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, … (DEPOT_LOG_LEVEL).") var logLevel: String?
    @Option(name: .customLong("log-format"), help: "json or text (DEPOT_LOG_FORMAT).") var logFormat: String?
    @Option(name: .customLong("prefetch"), help: "Unacknowledged deliveries per consumer (DEPOT_PREFETCH).")
    var prefetch: String?
    @Option(
        name: .customLong("confirm-timeout"),
        help: "How long the edge waits for a publisher confirm (DEPOT_CONFIRM_TIMEOUT).")
    var confirmTimeout: String?
    @Option(name: .customLong("admin-port"), help: "Workers' /healthz, /readyz, /metrics port (DEPOT_ADMIN_PORT).")
    var adminPort: String?
    @Option(name: .customLong("queue-type"), help: "classic or quorum (DEPOT_QUEUE_TYPE).") var queueType: String?
    @Option(
        name: .customLong("payment-timeout"),
        help: "How long a reserved order waits for its payment (DEPOT_PAYMENT_TIMEOUT).")
    var paymentTimeout: String?
    @Option(
        name: .customLong("rate-limit"), help: "Requests per caller, e.g. 100/s,burst=200, or 0 (DEPOT_RATE_LIMIT).")
    var rateLimit: String?
    @Option(
        name: .customLong("retry-delays"), help: "Delays before each retry, e.g. 500ms,2s,10s (DEPOT_RETRY_DELAYS).")
    var retryDelays: String?
    @Option(name: .customLong("shutdown-grace"), help: "How long a graceful shutdown may take (DEPOT_SHUTDOWN_GRACE).")
    var shutdownGrace: String?
    @Option(
        name: .customLong("management-url"),
        help: "RabbitMQ management API, for depot status's rates (DEPOT_MANAGEMENT_URL).")
    var managementURL: String?

    var flags: [String: String] {
        let values: [(String, String?)] = [
            ("DEPOT_AMQP_URL", amqpURL), ("DEPOT_DATABASE_URL", databaseURL),
            ("DEPOT_DATABASE_READ_URL", databaseReadURL),
            ("DEPOT_DATABASE_POOL_SIZE", databasePoolSize), ("DEPOT_HTTP_HOST", httpHost),
            ("DEPOT_HTTP_PORT", httpPort),
            ("DEPOT_JWT_SECRET", jwtSecret), ("DEPOT_LOG_LEVEL", logLevel), ("DEPOT_LOG_FORMAT", logFormat),
            ("DEPOT_PREFETCH", prefetch),
            ("DEPOT_CONFIRM_TIMEOUT", confirmTimeout), ("DEPOT_ADMIN_PORT", adminPort), ("DEPOT_QUEUE_TYPE", queueType),
            ("DEPOT_PAYMENT_TIMEOUT", paymentTimeout), ("DEPOT_RATE_LIMIT", rateLimit),
            ("DEPOT_RETRY_DELAYS", retryDelays),
            ("DEPOT_SHUTDOWN_GRACE", shutdownGrace), ("DEPOT_MANAGEMENT_URL", managementURL),
        ]
        return values.reduce(into: [:]) { flags, pair in if let value = pair.1 { flags[pair.0] = value } }
    }

    func settings() throws -> Settings {
        let settings = try Settings.resolve(flags: flags)
        bootstrapLogging(settings)
        return settings
    }

    /// For a long-running process: settings, logging and metrics, each set up once.
    func processSettings() throws -> (Settings, ProcessMetrics) {
        (try settings(), ProcessMetrics.bootstrap())
    }
}
