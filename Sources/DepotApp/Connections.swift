import AMQP
import Logging
import Postgres

/// Opening the broker and the database from settings, with start-up failures named by their
/// setting (CONTRACT §2: still unreachable after 10 s → exit 2 naming the variable).
public enum Connections {
    public static func amqp(_ settings: Settings, logger: Logger) async throws -> AMQPConnection {
        var options = AMQPConfiguration.Options()
        options.initialConnectDeadline = .seconds(10)
        let configuration: AMQPConfiguration
        do { configuration = try AMQPConfiguration(url: settings.amqpURL, options: options) } catch {
            throw ConfigurationError(setting: "DEPOT_AMQP_URL", problem: "not a usable amqp:// URL")
        }
        do {
            return try await AMQPConnection.connect(configuration, logger: logger)
        } catch let error as AMQPError {
            throw ConfigurationError(
                setting: "DEPOT_AMQP_URL",
                problem: "broker unreachable after 10 s at \(configuration.endpoints.map(\.description).joined(separator: ", ")) (\(error.replyText ?? "\(error.code)"))")
        }
    }

    public static func postgres(
        _ settings: Settings, url: String? = nil, setting: String = "DEPOT_DATABASE_URL", maxConnections: Int = 10, logger: Logger
    ) async throws -> PostgresPool {
        var options = PostgresConfiguration.Options()
        options.maxConnections = maxConnections
        let configuration = try PostgresConfiguration(url: url ?? settings.databaseURL, options: options)
        let pool = PostgresPool(configuration: configuration, logger: logger)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                _ = try await pool.withConnection { try await $0.execute("SELECT 1") }
                return pool
            } catch let error as PostgresError where error.kind == .connectionFailed && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
            } catch let error as PostgresError {
                await pool.shutdown()
                throw ConfigurationError(setting: setting, problem: "database unreachable after 10 s (\(error.message))")
            }
        }
    }
}
