import AMQP
import Logging
import Messaging
import Postgres
import Synchronization

/// What a process opened for its parts: the shared pool, the broker connection, its settings
/// and budget. Every connection made through it is closed, and awaited, when the scope ends.
public final class ProcessScope: Sendable {
    public let settings: Settings
    public let logger: Logger
    public let budget: ConnectionBudget
    /// `depot-<process>`, on every connection the process opens.
    public let applicationName: String
    public let pool: PostgresPool
    public let amqp: AMQPConnection
    /// Where LISTEN connections go (the primary).
    public let listenConfiguration: PostgresConfiguration
    /// Pools a part opened for itself, closed with the scope.
    private let extraPools = Mutex<[PostgresPool]>([])

    init(
        settings: Settings, logger: Logger, budget: ConnectionBudget, applicationName: String, pool: PostgresPool,
        amqp: AMQPConnection,
        listenConfiguration: PostgresConfiguration
    ) {
        self.settings = settings
        self.logger = logger
        self.budget = budget
        self.applicationName = applicationName
        self.pool = pool
        self.amqp = amqp
        self.listenConfiguration = listenConfiguration
    }

    /// Opens the broker and the database for a process within `budget`, runs `body`, and closes
    /// everything (extra pools, then the broker, then the shared pool) before returning.
    public static func withConnections<T>(
        settings: Settings, budget: ConnectionBudget, applicationName: String, logger: Logger,
        _ body: (ProcessScope) async throws -> T
    ) async throws -> T {
        let pool = try await Connections.postgres(
            settings, maxConnections: budget.primary, minimum: min(budget.minimum, budget.primary),
            applicationName: applicationName,
            logger: logger)
        let amqp: AMQPConnection
        do { amqp = try await Connections.amqp(settings, logger: logger) } catch {
            await pool.shutdown()
            throw error
        }
        let scope: ProcessScope
        do {
            scope = ProcessScope(
                settings: settings, logger: logger, budget: budget, applicationName: applicationName, pool: pool,
                amqp: amqp,
                listenConfiguration: try Connections.postgresConfiguration(
                    settings.databaseURL, applicationName: applicationName))
        } catch {
            await amqp.close()
            await pool.shutdown()
            throw error
        }
        do {
            let result = try await body(scope)
            await scope.close()
            return result
        } catch {
            await scope.close()
            throw error
        }
    }

    /// A pool of its own for a part (on `url`, the primary by default), closed with the scope.
    public func openPool(
        url: String? = nil, setting: String = "DEPOT_DATABASE_URL", maxConnections: Int, logger: Logger? = nil
    ) async throws -> PostgresPool {
        let opened = try await Connections.postgres(
            settings, url: url, setting: setting, maxConnections: maxConnections, applicationName: applicationName,
            logger: logger ?? self.logger)
        extraPools.withLock { $0.append(opened) }
        return opened
    }

    /// The outbox relay of `schema`.
    func relay(for schema: String, logger: Logger) -> OutboxRelay {
        OutboxRelay(
            outbox: Outbox(schema: schema), pool: pool, amqp: amqp, listenConfiguration: listenConfiguration,
            logger: logger)
    }

    /// A consumer of `queue` handling each delivery in one transaction with `schema`'s inbox and outbox.
    func consumer(
        _ queue: QueueSpec, schema: String, _ handler: any MessageHandler, _ relay: OutboxRelay, _ logger: Logger
    ) -> MessageConsumer {
        MessageConsumer(
            queue: queue, schema: schema, handler: handler, pool: pool, amqp: amqp, prefetch: settings.prefetch,
            concurrency: budget.handlerConcurrency, relayWake: relay.wake, logger: logger)
    }

    private func close() async {
        for extra in extraPools.withLock({ $0.reversed() }) { await extra.shutdown() }
        await amqp.close()
        await pool.shutdown()
    }
}
