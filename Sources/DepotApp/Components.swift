import AMQP
import DepotModel
import Edge
import Foundation
import Inventory
import Logging
import Messaging
import Metrics
import Orders
import Payments
import Postgres
import Projector
import Prometheus
import ServiceLifecycle
import UnixSignals
import Operations

/// The long-running components of docs/interface.md §1 that consume from the broker.
public enum Component: String, Sendable, CaseIterable {
    case orders, inventory, payments, projector

    /// The queue this component consumes, with the handlers' default retry delays.
    public var queue: QueueSpec {
        switch self {
        case .orders: OrderHandler.queue
        case .inventory: InventoryHandler.queue
        case .payments: PaymentHandler.queue
        case .projector: ProjectorHandler.queue
        }
    }

    /// The schema whose outbox this component relays (the projector has none).
    var outboxSchema: String? {
        switch self {
        case .orders: OrderHandler.schema
        case .inventory: InventoryHandler.schema
        case .payments: PaymentHandler.schema
        case .projector: nil
        }
    }
}

/// Builds and runs components as `Service`s in one `ServiceGroup` per process.
public struct ComponentRunner: Sendable {
    /// One Prometheus registry per process, behind swift-metrics (until issue #10 moves the
    /// bootstrap next to the logging one: it was `EdgeServer.metricsRegistry`).
    static let metricsRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    public let settings: Settings
    public let logger: Logger

    public init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The name in `application_name` (`depot-<name>`): a component, `edge`, or `all`.
    static func processName(_ components: [Component], edge: Bool) -> String {
        if edge && components.count == Component.allCases.count { return "all" }
        return (components.map(\.rawValue) + (edge ? ["edge"] : [])).joined(separator: "+")
    }

    /// Connects, migrates, declares the topology, and runs until SIGTERM or SIGINT; then stops
    /// consuming, finishes what it holds, flushes the outboxes and returns. With `edge`, also
    /// serves the HTTP edge (signing tokens with `jwtSecret`).
    public func run(_ components: [Component], edge jwtSecret: String? = nil, onEdgeReady: @Sendable (String) async -> Void = { _ in }) async throws {
        let metrics = Self.metricsRegistry  // bootstraps swift-metrics before any metric is created
        let edge = jwtSecret != nil
        let separateRead = edge && settings.databaseReadURL != settings.databaseURL
        let budget = try ConnectionBudget.plan(
            components: components, edge: edge, separateReadURL: separateRead, size: settings.databasePoolSize)
        let applicationName = "depot-\(Self.processName(components, edge: edge))"
        logger.info("database connections", metadata: ["budget": "\(budget)", "application_name": "\(applicationName)"])
        let pool = try await Connections.postgres(
            settings, maxConnections: budget.primary, minimum: min(budget.minimum, budget.primary), applicationName: applicationName, logger: logger)
        let amqp: AMQPConnection
        do { amqp = try await Connections.amqp(settings, logger: logger) } catch {
            await pool.shutdown()
            throw error
        }
        var cleanups: [@Sendable () async -> Void] = []
        do {
            try await Migrator(pool: pool).migrate { logger.info("\($0)") }
            let listenConfiguration = try Connections.postgresConfiguration(settings.databaseURL, applicationName: applicationName)
            var services: [any Service] = []
            for component in components {
                let made = try await makeServices(
                    component, pool: pool, amqp: amqp, budget: budget, listenConfiguration: listenConfiguration,
                    applicationName: applicationName)
                services += made.services
                cleanups += made.cleanups
            }
            if let jwtSecret {
                var read = pool
                if separateRead {
                    read = try await Connections.postgres(
                        settings, url: settings.databaseReadURL, setting: "DEPOT_DATABASE_READ_URL", maxConnections: budget.read,
                        applicationName: applicationName, logger: logger)
                    cleanups.append { [read] in await read.shutdown() }
                }
                services.append(
                    EdgeServer.application(
                        configuration: EdgeConfiguration(
                            host: settings.httpHost, port: settings.httpPort, confirmTimeout: settings.confirmTimeout,
                            rateLimit: settings.rateLimit, listenConfiguration: listenConfiguration),
                        publisher: MessagePublisher(amqp: amqp), primary: pool, read: read, authority: await TokenAuthority(secret: jwtSecret),
                        metrics: metrics, logger: logger))
                try await Topology.declareExchanges(on: amqp)
                await onEdgeReady("http://\(settings.httpHost):\(settings.httpPort)")
            }
            if jwtSecret == nil, let adminPort = settings.adminPort {
                let admin = AdminServer.application(host: settings.httpHost, port: adminPort, metrics: metrics, logger: logger) { [amqp, pool] in
                    let database = (try? await pool.withConnection { try await $0.query("SELECT 1") }) != nil
                    return ["broker": amqp.isConnected, "database": database]
                }
                services.append(admin)
                logger.info("admin endpoints", metadata: ["url": "http://\(settings.httpHost):\(adminPort)"])
            }
            services.append(MetricsSampler(components: components, pool: pool, amqp: amqp))
            logger.info("running", metadata: ["components": "\((components.map(\.rawValue) + (jwtSecret == nil ? [] : ["edge"])).joined(separator: ", "))"])
            var configuration = ServiceGroupConfiguration(
                services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            configuration.maximumGracefulShutdownDuration = settings.shutdownGrace
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            for cleanup in cleanups { await cleanup() }
            await amqp.close()
            await pool.shutdown()
            throw error
        }
        for cleanup in cleanups { await cleanup() }
        await amqp.close()
        await pool.shutdown()
        logger.info("stopped")
    }

    /// Declares every exchange and every component's queues (for operators: `depot migrate --topology`).
    public static func declareTopology(settings: Settings, on amqp: AMQPConnection) async throws -> (exchanges: [String], queues: [String]) {
        let queueType = QueueType(rawValue: settings.queueType.rawValue) ?? .classic
        try await Topology.declareExchanges(on: amqp)
        for component in Component.allCases {
            var queue = component.queue
            queue.retryDelays = settings.retryDelays
            try await Topology.declare(queue, on: amqp, queueType: queueType)
        }
        return ([Exchanges.commands, Exchanges.events, Exchanges.dead], Component.allCases.map(\.queue.name))
    }

    var queueType: QueueType { QueueType(rawValue: settings.queueType.rawValue) ?? .classic }

    /// One component's services, in start order (they stop in reverse: the consumer first,
    /// the relay last, so everything committed is published before the process ends).
    func makeServices(
        _ component: Component, pool: PostgresPool, amqp: AMQPConnection, budget: ConnectionBudget,
        listenConfiguration: PostgresConfiguration, applicationName: String
    ) async throws -> (
        services: [any Service], cleanups: [@Sendable () async -> Void]
    ) {
        var queue = component.queue
        queue.retryDelays = settings.retryDelays
        try await Topology.declareExchanges(on: amqp)
        try await Topology.declare(queue, on: amqp, queueType: queueType)
        var logger = self.logger
        logger[metadataKey: "component"] = "\(component.rawValue)"

        if component == .projector {
            let consumer = BatchConsumer(
                queue: queue, handler: ProjectorHandler(), pool: pool, amqp: amqp, prefetch: max(settings.prefetch, 256),
                maxBatch: 256, logger: logger)
            return ([consumer], [])
        }
        let relay = OutboxRelay(
            outbox: Outbox(schema: component.outboxSchema!), pool: pool, amqp: amqp,
            listenConfiguration: listenConfiguration, logger: logger)
        var services: [any Service] = [relay]
        var cleanups: [@Sendable () async -> Void] = []
        let handler: any MessageHandler
        switch component {
        case .orders:
            handler = OrderHandler(paymentTimeout: settings.paymentTimeout)
            services.append(PaymentDeadlineWatcher(pool: pool, paymentTimeout: settings.paymentTimeout, relayWake: relay.wake, logger: logger))
        case .inventory:
            handler = InventoryHandler()
        case .payments:
            // The simulated provider keeps its books through its own connections, as a remote one would.
            let providerPool = try await Connections.postgres(
                settings, maxConnections: budget.provider, applicationName: applicationName, logger: logger)
            cleanups.append { await providerPool.shutdown() }
            handler = PaymentHandler(provider: SimulatedPaymentProvider(pool: providerPool))
        case .projector:
            preconditionFailure("handled above")
        }
        services.append(
            MessageConsumer(
                queue: queue, schema: component.outboxSchema!, handler: handler, pool: pool, amqp: amqp,
                prefetch: settings.prefetch, concurrency: budget.handlerConcurrency, relayWake: relay.wake, logger: logger))
        return (services, cleanups)
    }
}
