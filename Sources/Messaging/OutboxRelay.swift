import AMQP
import Foundation
import Logging
import Postgres
import ServiceLifecycle

/// Publishes a service's outbox in order, in batches, with publisher confirms, and deletes
/// each row only after its confirm.
///
/// Woken by the service's own handlers after each commit (in-process), by NOTIFY on the
/// outbox's channel (sent by a relay that could not publish, so that a replica whose broker
/// connection is healthy takes over at once, and by any writer without a relay), and by a
/// one-second tick as a safety net. Several replicas may run: a transaction
/// advisory lock lets one relay publish at a time, so order holds across replicas; a crash
/// after publishing but before deleting publishes those rows again, and consumers' inboxes
/// absorb the repeat.
public final class OutboxRelay: Service, Sendable {
    public let outbox: Outbox
    public let wake = WakeSignal()
    let pool: PostgresPool
    let amqp: AMQPConnection
    let listenConfiguration: PostgresConfiguration?
    let batchSize: Int
    let logger: Logger

    public init(
        outbox: Outbox, pool: PostgresPool, amqp: AMQPConnection, listenConfiguration: PostgresConfiguration? = nil,
        batchSize: Int = 500, logger: Logger
    ) {
        self.outbox = outbox
        self.pool = pool
        self.amqp = amqp
        self.listenConfiguration = listenConfiguration
        self.batchSize = batchSize
        self.logger = logger
    }

    /// The advisory lock key, one per outbox.
    var lockKey: Int64 {
        // FNV-1a of the schema name: stable across processes and builds.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "depot.outbox.\(outbox.schema)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            if let listenConfiguration {
                let channel = outbox.channel
                group.addTask { [wake] in
                    for await _ in PostgresNotifications(configuration: listenConfiguration, channels: [channel]) {
                        wake.signal()
                    }
                }
            }
            group.addTask { [wake] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    wake.signal()
                }
            }
            await cancelWhenGracefulShutdown { await self.relayUntilCancelled() }
            // Flush what is committed before leaving.
            _ = try? await self.drain()
            group.cancelAll()
        }
    }

    private func relayUntilCancelled() async {
        var failures = 0
        while !Task.isCancelled {
            await wake.wait()
            do {
                try await drain()
                failures = 0
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                if failures == 1 { await notifyOtherRelays() }
                logger.warning(
                    "outbox relay failed; retrying",
                    metadata: [LogKey.error: "\(String(reflecting: error))", "outbox": "\(outbox.schema)"])
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 6)), 5_000)))
                wake.signal()
            }
        }
    }

    private func notifyOtherRelays() async {
        _ = try? await pool.withConnection { connection in
            try await connection.execute("SELECT pg_notify(\(outbox.channel), 'publish failed')")
        }
    }

    /// Publishes until the outbox is empty (or another replica holds the lock).
    public func drain() async throws {
        while true {
            switch try await publishBatch() {
            case .published(let count) where count == batchSize: continue
            case .published: return
            case .lockedByAnotherRelay:
                // Another replica is publishing; look again soon in case our rows missed its batch.
                try await Task.sleep(for: .milliseconds(20))
                wake.signal()
                return
            }
        }
    }

    enum BatchResult {
        case published(Int)
        case lockedByAnotherRelay
    }

    private func publishBatch() async throws -> BatchResult {
        try await pool.withTransaction { connection in
            // The lock and the batch in one round trip (with BEGIN); no rows when another relay holds it.
            let rows = try await connection.query(
                """
                WITH relay AS (SELECT pg_try_advisory_xact_lock(\(lockKey)) AS locked)
                SELECT relay.locked, o.position, o.message_id, o.message_type, o.exchange, o.routing_key, o.correlation_id,
                       o.causation_id, o.traceparent, o.body, o.created_at
                FROM relay LEFT JOIN LATERAL (
                    SELECT * FROM \(unescaped: outbox.schema).outbox WHERE relay.locked ORDER BY position LIMIT \(batchSize)
                ) o ON true
                """)
            guard try rows.first?.decode(0, as: Bool.self) == true else { return .lockedByAnotherRelay }
            guard !rows[0].isNull(1) else { return .published(0) }
            var positions: [Int64] = []
            var batch: [AMQPConnection.BatchMessage] = []
            for row in rows {
                positions.append(try row.decode(1, as: Int64.self))
                let properties = MessageProperties.make(
                    id: try row.decode(2, as: UUID.self), type: try row.decode(3, as: String.self),
                    correlationId: try row.decode(6, as: String.self), causationId: try row.decode(7, as: UUID?.self),
                    traceparent: try row.decode(8, as: String?.self), timestamp: try row.decode(10, as: Date.self))
                batch.append(
                    .init(
                        OutgoingMessage(body: try row.decode(9, as: [UInt8].self), properties: properties),
                        exchange: try row.decode(4, as: String.self), routingKey: try row.decode(5, as: String.self)))
            }
            let results = await amqp.publish(batch: batch, timeout: .seconds(30))
            // Delete the confirmed prefix only: what follows a failure is published again, in order.
            let confirmed = results.firstIndex { $0 != nil } ?? results.count
            if confirmed > 0 {
                // By position list, not a range: a row committed meanwhile with a lower position
                // (its transaction began earlier) is not yet published.
                connection.executeLater(
                    """
                    DELETE FROM \(unescaped: outbox.schema).outbox
                    WHERE position = ANY (ARRAY(SELECT jsonb_array_elements_text(\(try PostgresJSON(encoding: Array(positions[..<confirmed]))))::bigint))
                    """)
            }
            if confirmed < results.count, let error = results[confirmed] {
                // Commit the deletions, then report.
                logger.warning(
                    "publish from outbox failed",
                    metadata: [LogKey.error: "\(String(reflecting: error))", "outbox": "\(outbox.schema)"])
                if confirmed == 0 { throw error }
            }
            return .published(confirmed)
        }
    }
}
