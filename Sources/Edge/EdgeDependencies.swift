import DepotModel
import Foundation
import Messaging
import Postgres
import Projector

// The edge's two seams: where it publishes commands, and the database it reads and claims
// through. The application passes the broker and the PostgreSQL pools; the router tests pass
// fakes (Tests/EdgeTests/Fakes.swift).

/// Where commands go: `MessagePublisher` on the broker's `depot.commands`.
protocol CommandPublishing: Sendable {
    /// False while the broker connection is down (the edge then answers 503 without trying).
    var isConnected: Bool { get }
    /// Returns once the broker has confirmed the message; throws when it does not within `timeout`.
    func publish<Payload>(_ envelope: Envelope<Payload>, traceparent: String?, timeout: Duration?) async throws
}

extension MessagePublisher: CommandPublishing {}

/// A page of orders: `GET /v1/orders`'s filters and keyset cursor.
struct OrderQuery: Sendable, Hashable {
    var customer: String?
    var status: OrderStatus?
    /// The sort key of the last order of the previous page: newest first by `created_at`, then id.
    var after: OrderCursor?
    var limit: Int
}

struct OrderCursor: Sendable, Hashable {
    var createdAt: Date
    var id: UUID
}

/// An event of the log as the edge serves it: its body exactly as on the broker.
struct LoggedEvent: Sendable, Hashable {
    var position: Int64
    var body: String
}

/// The queries: the projections and the event log, on `DEPOT_DATABASE_READ_URL`. Every method
/// throws `PostgresError` when the database is unavailable (the edge answers 503).
protocol ProjectionReading: Sendable {
    func product(_ sku: String) async throws -> ProductView?
    /// Products after `sku` in sku order ("" for the first page), at most `limit`.
    func products(after sku: String, limit: Int) async throws -> [ProductView]
    func order(_ id: UUID) async throws -> OrderRow?
    func orders(_ query: OrderQuery) async throws -> [OrderRow]
    /// The order's events in log order.
    func events(ofOrder id: UUID) async throws -> [LoggedEvent]
    /// Throws when the database cannot answer (`/readyz`).
    func ping() async throws
}

/// The idempotency keys of `POST /v1/orders`, on the primary.
protocol IdempotencyClaiming: Sendable {
    /// Claims `key` of `subject` for a new order, or returns the order it already names; 503
    /// when the claim is not committed within `timeout`.
    func claim(subject: String, key: String, request: String, timeout: Duration) async throws -> IdempotencyClaim
    /// Throws when the database cannot answer (`/readyz`).
    func ping() async throws
}

enum IdempotencyClaim: Sendable, Hashable {
    /// The order this key names.
    case order(UUID)
    /// The key names an order placed with another body.
    case conflict
}

/// `ProjectionReading` on a PostgreSQL pool (the read URL), falling back to the primary while
/// the read URL is unavailable (a standby stopped or restarting).
struct PostgresProjections: ProjectionReading {
    private let readPool: PostgresPool
    private let fallback: PostgresPool?

    init(pool: PostgresPool, fallback: PostgresPool? = nil) {
        self.readPool = pool
        self.fallback = fallback === pool ? nil : fallback
    }

    /// Runs `body` on the read pool, or on the primary while the read pool cannot answer.
    private func read<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await readPool.withConnection(body)
        } catch let error as PostgresError where error.isUnavailable {
            guard let fallback else { throw error }
            return try await fallback.withConnection(body)
        }
    }

    func product(_ sku: String) async throws -> ProductView? {
        try await read { connection in
            try await connection.query(
                "SELECT \(unescaped: ProductView.columns) FROM projections.products WHERE sku = \(sku)"
            ).first
        }.map(ProductView.init)
    }

    func products(after sku: String, limit: Int) async throws -> [ProductView] {
        try await read { connection in
            try await connection.query(
                "SELECT \(unescaped: ProductView.columns) FROM projections.products WHERE sku > \(sku) ORDER BY sku LIMIT \(limit)"
            )
        }.map(ProductView.init)
    }

    func order(_ id: UUID) async throws -> OrderRow? {
        try await read { connection in
            try await connection.query("SELECT \(unescaped: OrderRow.columns) FROM projections.orders WHERE id = \(id)")
                .first
        }.map(OrderRow.init)
    }

    func orders(_ query: OrderQuery) async throws -> [OrderRow] {
        let status = query.status?.rawValue
        let afterTime = query.after?.createdAt
        let afterId = query.after?.id
        return try await read { connection in
            try await connection.query(
                """
                SELECT \(unescaped: OrderRow.columns) FROM projections.orders
                WHERE (\(query.customer)::text IS NULL OR customer_id = \(query.customer))
                  AND (\(status)::text IS NULL OR status = \(status))
                  AND (\(afterTime)::timestamptz IS NULL OR (created_at, id) < (\(afterTime), \(afterId)))
                ORDER BY created_at DESC, id DESC LIMIT \(query.limit)
                """)
        }.map(OrderRow.init)
    }

    func events(ofOrder id: UUID) async throws -> [LoggedEvent] {
        try await read { connection in
            try await connection.query(
                "SELECT position, body FROM eventlog.events WHERE correlation_id = \(id.canonicalText) ORDER BY position"
            )
        }.map { LoggedEvent(position: try $0.decode(0), body: try $0.decode(1)) }
    }

    /// Ready while reads can be answered, by the read URL or by the primary in its place.
    func ping() async throws {
        try await read { _ = try await $0.query("SELECT 1") }
    }
}
