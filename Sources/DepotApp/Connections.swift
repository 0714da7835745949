import AMQP
import Logging
import Postgres

/// Opening the broker and the database from settings, with start-up failures named by their
/// setting (docs/interface.md §2: still unreachable after 10 s → exit 2 naming the variable).
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
                problem:
                    "broker unreachable after 10 s at \(configuration.endpoints.map(\.description).joined(separator: ", ")) (\(error.replyText ?? "\(error.code)"))"
            )
        }
    }

    /// A pool on the database, reachable within 10 s, holding `minimum` connections at once
    /// before it is handed out: a server that cannot give a process what it needs to work stops
    /// it at start (exit 2 naming DEPOT_DATABASE_POOL_SIZE), not in the middle of work.
    public static func postgres(
        _ settings: Settings, url: String? = nil, setting: String = "DEPOT_DATABASE_URL", maxConnections: Int = 1,
        minimum: Int = 1,
        applicationName: String, logger: Logger
    ) async throws -> PostgresPool {
        let configuration = try postgresConfiguration(
            url ?? settings.databaseURL, maxConnections: maxConnections, applicationName: applicationName)
        let pool = PostgresPool(configuration: configuration, logger: logger)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                _ = try await pool.withConnection { try await $0.execute("SELECT 1") }
                break
            } catch let error as PostgresError
                where error.kind == .connectionFailed && !error.isOutOfConnections && ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(250))
            } catch let error as PostgresError {
                await pool.shutdown()
                if error.isOutOfConnections { throw outOfConnections(opened: 0, wanted: minimum, serverLimit: nil) }
                throw ConfigurationError(
                    setting: setting, problem: "database unreachable after 10 s (\(error.message))")
            }
        }
        do {
            try await pool.prewarm(minimum)
        } catch let error as PostgresError where error.isOutOfConnections {
            // The pool's first connection is still idle: ask the server for its limit, to name it.
            let limit = try? await pool.withConnection {
                try await $0.query("SHOW max_connections").first?.decode(0, as: String.self)
            }
            let opened = pool.usage.open
            await pool.shutdown()
            throw outOfConnections(opened: opened, wanted: min(minimum, maxConnections), serverLimit: limit ?? nil)
        } catch {
            await pool.shutdown()
            throw error
        }
        return pool
    }

    /// A pool for an operator command, closed (and awaited) when `body` returns or throws.
    public static func withPostgres<T>(
        _ settings: Settings, maxConnections: Int = 1, applicationName: String, logger: Logger,
        _ body: (PostgresPool) async throws -> T
    ) async throws -> T {
        let pool = try await postgres(
            settings, maxConnections: maxConnections, applicationName: applicationName, logger: logger)
        do {
            let result = try await body(pool)
            await pool.shutdown()
            return result
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    /// A broker connection for an operator command, closed (and awaited) when `body` returns or throws.
    public static func withAMQP<T>(_ settings: Settings, logger: Logger, _ body: (AMQPConnection) async throws -> T)
        async throws -> T
    {
        let connection = try await amqp(settings, logger: logger)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// libpq settings for one pool or listener of this process.
    public static func postgresConfiguration(_ url: String, maxConnections: Int = 1, applicationName: String) throws
        -> PostgresConfiguration
    {
        var options = PostgresConfiguration.Options()
        options.maxConnections = maxConnections
        options.applicationName = applicationName
        return try PostgresConfiguration(url: url, options: options)
    }

    static func outOfConnections(opened: Int, wanted: Int, serverLimit: String?) -> ConfigurationError {
        ConfigurationError(
            setting: "DEPOT_DATABASE_POOL_SIZE",
            problem:
                "PostgreSQL refused connection \(opened + 1) of the \(wanted) this process needs to start (too many clients; the server's "
                + "max_connections is \(serverLimit ?? "reached")): lower DEPOT_DATABASE_POOL_SIZE, stop other clients, or raise max_connections"
        )
    }
}
