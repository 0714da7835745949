import AMQP
import DepotModel
import Foundation
import Messaging
import Postgres

/// `depot replay publish`: re-delivers stored events to ONE queue (through the default
/// exchange), never to everyone bound to `depot.events`, with their original ids, so the
/// consumer's inbox turns repeats into no-ops.
public struct EventRepublisher: Sendable {
    public struct Filter: Sendable {
        public var typePattern: String?
        public var fromPosition: Int64?
        public var toPosition: Int64?
        public var since: Date?
        public var until: Date?
        public var orderId: String?

        public init(
            typePattern: String? = nil, fromPosition: Int64? = nil, toPosition: Int64? = nil, since: Date? = nil,
            until: Date? = nil, orderId: String? = nil
        ) {
            self.typePattern = typePattern
            self.fromPosition = fromPosition
            self.toPosition = toPosition
            self.since = since
            self.until = until
            self.orderId = orderId
        }

        /// `order.*` style patterns as SQL LIKE.
        var likePattern: String? {
            typePattern.map {
                $0.replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
                    .replacingOccurrences(of: "*", with: "%").replacingOccurrences(of: "#", with: "%")
            }
        }

        public func query(after position: Int64, limit: Int, columns: String) -> PostgresQuery {
            """
            SELECT \(unescaped: columns) FROM eventlog.events
            WHERE position > \(max(position, (fromPosition ?? 1) - 1))
              AND (\(toPosition)::bigint IS NULL OR position <= \(toPosition))
              AND (\(likePattern)::text IS NULL OR type LIKE \(likePattern))
              AND (\(since)::timestamptz IS NULL OR occurred_at >= \(since))
              AND (\(until)::timestamptz IS NULL OR occurred_at < \(until))
              AND (\(orderId)::text IS NULL OR correlation_id = \(orderId))
            ORDER BY position LIMIT \(limit)
            """
        }
    }

    let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    /// How many events match (for `--dry-run`).
    public func count(_ filter: Filter) async throws -> Int {
        var total = 0
        var at: Int64 = 0
        while true {
            let rows = try await pool.withConnection {
                try await $0.query(filter.query(after: at, limit: 10_000, columns: "position"))
            }
            guard !rows.isEmpty else { return total }
            total += rows.count
            at = try rows[rows.count - 1].decode(0)
        }
    }

    /// Publishes every matching event to `queue` in log order, in confirmed batches; returns how many.
    public func publish(
        _ filter: Filter, to queue: String, amqp: AMQPConnection, progress: @Sendable (Int) -> Void = { _ in }
    ) async throws -> Int {
        var sent = 0
        var at: Int64 = 0
        while true {
            let rows = try await pool.withConnection {
                try await $0.query(
                    filter.query(
                        after: at, limit: 500,
                        columns: "position, id, type, correlation_id, causation_id, traceparent, occurred_at, body"))
            }
            if rows.isEmpty { return sent }
            var batch: [AMQPConnection.BatchMessage] = []
            for row in rows {
                let properties = MessageProperties.make(
                    id: try row.decode(1), type: try row.decode(2), correlationId: try row.decode(3),
                    causationId: try row.decode(4, as: UUID?.self),
                    traceparent: try row.decode(5, as: String?.self), timestamp: try row.decode(6))
                batch.append(
                    .init(
                        OutgoingMessage(body: Array(try row.decode(7, as: String.self).utf8), properties: properties),
                        exchange: "", routingKey: queue, mandatory: true))
            }
            let results = await amqp.publish(batch: batch, timeout: .seconds(30))
            if let failure = results.compactMap({ $0 }).first {
                throw failure
            }
            sent += rows.count
            at = try rows[rows.count - 1].decode(0)
            progress(sent)
        }
    }
}
