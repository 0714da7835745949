import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Messaging
import Postgres
import Prometheus
import ServiceLifecycle

/// The edge's configuration, resolved by the executable from DEPOT_* settings.
public struct EdgeConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var confirmTimeout: Duration
    /// Tokens per second and burst per caller; nil turns rate limiting off.
    public var rateLimit: (rate: Double, burst: Double)?
    /// Where the edge LISTENs for the projector's change notices (the primary).
    public var listenConfiguration: PostgresConfiguration
    /// The RabbitMQ management API (`DEPOT_MANAGEMENT_URL`), for message rates in the admin
    /// overview; without it the overview shows depths and consumers only.
    public var managementURL: String?

    public init(
        host: String, port: Int, confirmTimeout: Duration, rateLimit: (rate: Double, burst: Double)?,
        listenConfiguration: PostgresConfiguration, managementURL: String? = nil
    ) {
        self.host = host
        self.port = port
        self.confirmTimeout = confirmTimeout
        self.rateLimit = rateLimit
        self.listenConfiguration = listenConfiguration
        self.managementURL = managementURL
    }
}

/// Builds the edge: a Hummingbird application with every route of docs/interface.md §3.
public enum EdgeServer {
    /// The router with every route and middleware, on whatever the two seams are given (the
    /// broker and PostgreSQL in the application, fakes in the router tests).
    static func router(
        configuration: EdgeConfiguration, publisher: any CommandPublishing, projections: any ProjectionReading,
        idempotency: any IdempotencyClaiming, authority: TokenAuthority, waiters: ProjectionWaiters,
        metrics: PrometheusCollectorRegistry, admin: AdminRoutes,
        benchmarkConstant: (@Sendable () -> String)? = nil
    ) -> Router<EdgeContext> {
        let routes = EdgeRoutes(
            publisher: publisher, projections: projections, idempotency: idempotency, waiters: waiters,
            metrics: EdgeMetrics(registry: metrics),
            confirmTimeout: configuration.confirmTimeout)
        let router = Router(context: EdgeContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: AccessLogMiddleware())  // outside the problem middleware: it sees every answer
        router.add(middleware: ProblemMiddleware(routes: RouteTable()))
        router.add(middleware: AuthenticationMiddleware(authority: authority))
        if let limit = configuration.rateLimit {
            router.add(middleware: RateLimitMiddleware(limiter: RateLimiter(rate: limit.rate, burst: limit.burst)))
        }

        // By operationId, as in the OpenAPI document and `RouteTable`.
        let handlers: [String: @Sendable (Request, EdgeContext) async throws -> Response] = [
            "createProduct": routes.createProduct,
            "listProducts": routes.listProducts,
            "getProduct": routes.getProduct,
            "updateProduct": routes.updateProduct,
            "discontinueProduct": routes.discontinueProduct,
            "adjustStock": routes.adjustStock,
            "placeOrder": routes.placeOrder,
            "listOrders": routes.listOrders,
            "getOrder": routes.getOrder,
            "cancelOrder": routes.cancelOrder,
            "orderEvents": routes.orderEvents,
            "health": { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
            },
            "ready": { _, _ in
                try await readiness(publisher: publisher, projections: projections, idempotency: idempotency)
            },
            "metrics": { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
            },
            "openapi": { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes)))
            },
            "docs": { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.html)))
            },
            "adminOverview": admin.overview,
            "adminFlow": admin.flow,
            "listDeadLetterQueues": admin.deadLetterQueues,
            "showDeadLetters": admin.deadLetters,
            "redriveDeadLetters": admin.redrive,
            "purgeDeadLetters": admin.purge,
            "startReplayDryRun": admin.replayDryRun,
            "listAdminJobs": admin.listJobs,
            "getAdminJob": admin.getJob,
            "checkOrderRebuild": admin.rebuildCheck,
        ]
        if let benchmarkConstant {
            // Only in `depot-bench`: the trivial reference route, behind the same middleware.
            router.get("/bench/constant") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: benchmarkConstant())))
            }
        }
        ConsolePage.addRoutes(to: router)
        for route in RouteTable.all {
            guard let handler = handlers[route.operationId] else {
                preconditionFailure("no handler for operation \(route.operationId)")
            }
            router.on(RouterPath(route.hummingbirdPath), method: route.method) { request, context in
                try await handler(request, context)
            }
        }
        return router
    }

    static func readiness(
        publisher: any CommandPublishing, projections: any ProjectionReading, idempotency: any IdempotencyClaiming
    ) async throws -> Response {
        async let database = (try? await idempotency.ping()) != nil
        async let readDatabase = (try? await projections.ping()) != nil
        let readiness = Readiness(
            broker: publisher.isConnected, database: await database, readDatabase: await readDatabase)
        var response = try Response.json(readiness, status: readiness.isReady ? .ok : .serviceUnavailable)
        if !readiness.isReady { response.headers[.retryAfter] = "5" }
        return response
    }

    /// The edge as a Hummingbird application plus the services it needs, ready for a ServiceGroup.
    /// `metrics` is the process's registry (the application bootstraps swift-metrics with it):
    /// the edge records its own metrics there and serves it on `/metrics`.
    public static func application(
        configuration: EdgeConfiguration, publisher: MessagePublisher, primary: PostgresPool, read: PostgresPool,
        authority: TokenAuthority, metrics: PrometheusCollectorRegistry, logger: Logger,
        benchmarkConstant: (@Sendable () -> String)? = nil
    ) -> some ApplicationProtocol {
        let waiters = ProjectionWaiters(listenConfiguration: configuration.listenConfiguration, logger: logger)
        let operations = LiveAdminOperations(
            amqp: publisher.amqp, pool: primary, managementURL: configuration.managementURL)
        let admin = AdminRoutes(
            admin: operations, jobs: AdminJobs(logger: logger, ledger: PostgresAdminJobLedger(pool: primary)),
            history: AdminFlowHistory())
        let router = router(
            configuration: configuration, publisher: publisher,
            projections: PostgresProjections(pool: read, fallback: primary),
            idempotency: IdempotencyKeys(pool: primary, registry: metrics), authority: authority, waiters: waiters,
            metrics: metrics, admin: admin,
            benchmarkConstant: benchmarkConstant)
        let sampler = AdminFlowSampler(history: admin.history, admin: operations, logger: logger)
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "depot"),
            services: [waiters, admin.jobs, sampler], logger: logger)
    }
}
