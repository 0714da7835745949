import AMQP
import Edge
import Logging
import Messaging
import Operations
import Postgres
import ServiceLifecycle
import UnixSignals

/// A process as a plan: the parts it runs (components that consume from the broker, and the
/// HTTP edge), each making its services from what the process opened for it (`ProcessScope`),
/// all in one `ServiceGroup` that stops on SIGTERM or SIGINT.
public struct ProcessPlan: Sendable {
    /// The HTTP edge, with the key that verifies bearer tokens.
    public struct EdgePart: Sendable {
        public var jwtSecret: String
        /// Called with the edge's URL once it is about to listen.
        public var onReady: @Sendable (String) async -> Void

        public init(jwtSecret: String, onReady: @escaping @Sendable (String) async -> Void = { _ in }) {
            self.jwtSecret = jwtSecret
            self.onReady = onReady
        }
    }

    public var components: [Component]
    public var edge: EdgePart?

    public init(components: [Component], edge: EdgePart? = nil) {
        self.components = components
        self.edge = edge
    }

    /// The process's name in `application_name` (`depot-<name>`) and logs: a component, `edge`, or `all`.
    public var name: String {
        if edge != nil && components.count == Component.allCases.count { return "all" }
        return (components.map(\.rawValue) + (edge != nil ? ["edge"] : [])).joined(separator: "+")
    }

    /// How this plan shares out `DEPOT_DATABASE_POOL_SIZE`.
    public func budget(_ settings: Settings) throws(ConfigurationError) -> ConnectionBudget {
        try ConnectionBudget.plan(
            components: components, edge: edge != nil,
            separateReadURL: edge != nil && settings.databaseReadURL != settings.databaseURL,
            size: settings.databasePoolSize)
    }

    /// Connects, migrates, starts every part, and runs until SIGTERM or SIGINT; then stops
    /// consuming, finishes what it holds, flushes the outboxes, closes its connections and returns.
    public func run(settings: Settings, logger: Logger, metrics: ProcessMetrics) async throws {
        let budget = try budget(settings)
        let applicationName = "depot-\(name)"
        logger.info(
            "database connections", metadata: ["budget": "\(budget)", "application_name": "\(applicationName)"])
        try await ProcessScope.withConnections(
            settings: settings, budget: budget, applicationName: applicationName, logger: logger
        ) { scope in
            try await Migrator(pool: scope.pool).migrate { logger.info("\($0)") }
            var services: [any Service] = []
            for component in components { services += try await component.services(in: scope) }
            if let edge {
                services.append(try await edgeService(edge, in: scope, metrics: metrics))
            } else if let adminPort = settings.adminPort {
                // Workers' probes and metrics; an edge serves them on its own port.
                services.append(adminService(port: adminPort, in: scope, metrics: metrics))
            }
            services.append(MetricsSampler(components: components, pool: scope.pool, amqp: scope.amqp))
            logger.info(
                "running",
                metadata: [
                    "parts": "\((components.map(\.rawValue) + (edge == nil ? [] : ["edge"])).joined(separator: ", "))"
                ])
            var configuration = ServiceGroupConfiguration(
                services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            configuration.maximumGracefulShutdownDuration = settings.shutdownGrace
            try await ServiceGroup(configuration: configuration).run()
        }
        logger.info("stopped")
    }

    private func edgeService(_ edge: EdgePart, in scope: ProcessScope, metrics: ProcessMetrics) async throws
        -> any Service
    {
        let settings = scope.settings
        var read = scope.pool
        if scope.budget.read > 0 {
            read = try await scope.openPool(
                url: settings.databaseReadURL, setting: "DEPOT_DATABASE_READ_URL", maxConnections: scope.budget.read)
        }
        let application = EdgeServer.application(
            configuration: EdgeConfiguration(
                host: settings.httpHost, port: settings.httpPort, confirmTimeout: settings.confirmTimeout,
                rateLimit: settings.rateLimit,
                listenConfiguration: scope.listenConfiguration, managementURL: settings.managementURL),
            publisher: MessagePublisher(amqp: scope.amqp), primary: scope.pool, read: read,
            authority: await TokenAuthority(secret: edge.jwtSecret), metrics: metrics.registry, logger: scope.logger)
        try await Topology.declareExchanges(on: scope.amqp)
        await edge.onReady("http://\(settings.httpHost):\(settings.httpPort)")
        return application
    }

    private func adminService(port: Int, in scope: ProcessScope, metrics: ProcessMetrics) -> any Service {
        let (amqp, pool) = (scope.amqp, scope.pool)
        let admin = AdminServer.application(
            host: scope.settings.httpHost, port: port, metrics: metrics.registry, logger: scope.logger
        ) {
            let database = (try? await pool.withConnection { try await $0.query("SELECT 1") }) != nil
            return ["broker": amqp.isConnected, "database": database]
        }
        scope.logger.info("admin endpoints", metadata: ["url": "http://\(scope.settings.httpHost):\(port)"])
        return admin
    }
}
