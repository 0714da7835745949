import DepotModel
import Foundation
import Postgres
import Projector

/// "Compare with a rebuild from the log" for one order: its events folded again, by the
/// projector's own code, into temporary tables, and the rows compared with the live ones.
///
/// The temporary tables belong to the transaction (`ON COMMIT DROP`), so nothing is written
/// anywhere else and it can run next to the projector and next to `depot replay projections`.
public struct OrderRebuildCheck: Sendable {
    public struct Outcome: Sendable, Codable {
        public var orderId: String
        /// Events of the order in the log.
        public var events: Int
        /// Whether the live rows equal the rebuilt ones.
        public var matches: Bool
        /// The live `projections.orders` row as JSON, nil when there is none.
        public var live: String?
        public var rebuilt: String?
        /// History rows (`projections.order_history`) live and rebuilt.
        public var liveHistory: Int
        public var rebuiltHistory: Int
    }

    let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    /// Nil when the log has no event of the order.
    public func check(_ orderId: UUID) async throws -> Outcome? {
        let key = orderId.canonicalText
        return try await pool.withTransaction { connection -> Outcome? in
            // The live rows and the log as one snapshot: the projector appends under this lock.
            try await connection.execute("SELECT pg_advisory_xact_lock(\(EventLog.lockKeyForOperators))")
            let events = try await connection.query(
                """
                SELECT position, id, type, correlation_id, occurred_at, body FROM eventlog.events
                WHERE correlation_id = \(key) ORDER BY position
                """
            ).map { row in
                let type: String = try row.decode(2)
                guard let messageType = MessageType(rawValue: type) else {
                    throw EnvelopeError(kind: .unknownType, detail: type)
                }
                return StoredEvent(
                    position: try row.decode(0), id: try row.decode(1), type: messageType,
                    correlationId: try row.decode(3), occurredAt: try row.decode(4),
                    body: Array(try row.decode(5, as: String.self).utf8))
            }
            guard !events.isEmpty else { return nil }
            for table in ["orders", "order_history"] {
                try await connection.execute(
                    "CREATE TEMP TABLE \(unescaped: table) (LIKE projections.\(unescaped: table) INCLUDING ALL) ON COMMIT DROP"
                )
            }
            try await Projections(schema: "pg_temp", only: ["orders"]).apply(events, on: connection)
            try await connection.flush()
            let rows = try await connection.query(
                """
                SELECT (SELECT row_to_json(l)::text FROM projections.orders l WHERE l.id = \(orderId)),
                       (SELECT row_to_json(r)::text FROM pg_temp.orders r WHERE r.id = \(orderId)),
                       (SELECT count(*) FROM projections.order_history WHERE order_id = \(orderId)),
                       (SELECT count(*) FROM pg_temp.order_history WHERE order_id = \(orderId)),
                       (SELECT (SELECT row_to_json(l)::jsonb FROM projections.orders l WHERE l.id = \(orderId))
                            IS NOT DISTINCT FROM (SELECT row_to_json(r)::jsonb FROM pg_temp.orders r WHERE r.id = \(orderId))),
                       NOT EXISTS (
                           (SELECT position, type, occurred_at FROM projections.order_history WHERE order_id = \(orderId)
                            EXCEPT SELECT position, type, occurred_at FROM pg_temp.order_history)
                           UNION ALL
                           (SELECT position, type, occurred_at FROM pg_temp.order_history
                            EXCEPT SELECT position, type, occurred_at FROM projections.order_history WHERE order_id = \(orderId)))
                """)[0]
            let sameOrder: Bool = try rows.decode(4)
            let sameHistory: Bool = try rows.decode(5)
            return Outcome(
                orderId: key, events: events.count, matches: sameOrder && sameHistory, live: try rows.decode(0),
                rebuilt: try rows.decode(1), liveHistory: Int(try rows.decode(2, as: Int64.self)),
                rebuiltHistory: Int(try rows.decode(3, as: Int64.self)))
        }
    }
}
