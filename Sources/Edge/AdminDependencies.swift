import AMQP
import DepotModel
import Foundation
import Messaging
import Operations
import Postgres
import Projector

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

// The admin API's seam (docs/interface.md §3.9): the operator work of `Sources/Operations`, the
// same code `depot status`, `depot dlq` and `depot replay` run. The application passes the
// broker and the primary; the router tests pass a fake (Tests/EdgeTests/Fakes.swift).

/// One order event of the log as the flow charts need it.
struct FlowEvent: Sendable, Hashable {
    var position: Int64
    var type: String
    var orderId: String
    var occurredAt: Date
}

/// What the edge samples for its charts: order events since a position, and dead-letter depths.
struct FlowSample: Sendable {
    var events: [FlowEvent]
    /// The position read up to (the next sample starts after it).
    var position: Int64
    /// Messages in all dead-letter queues now; nil when the broker could not be asked.
    var deadLetters: Int?
}

protocol AdminOperating: Sendable {
    /// `depot status`'s report.
    func overview() async throws -> SystemStatus.Report
    /// Whether the broker connection is up.
    var brokerConnected: Bool { get }
    /// Messages in `queue`, or nil when the queue does not exist.
    func depth(of queue: String) async throws -> Int?
    func summary(of queue: String) async throws -> DeadLetters.Summary
    func peek(_ queue: String, limit: Int) async throws -> [DeadLetters.Letter]
    func redrive(_ queue: String, selection: DeadLetters.Selection, progress: @escaping @Sendable (Int) -> Void)
        async throws -> DeadLetters.RedriveOutcome
    func purge(_ queue: String) async throws -> Int
    func replayDryRun(
        projections: [String], progress: @escaping @Sendable (ProjectionRebuild.Progress) -> Void
    ) async throws -> [ProjectionRebuild.Difference]
    func rebuildCheck(order: UUID) async throws -> OrderRebuildCheck.Outcome?
    /// Order events after `position` (at most `limit`) and the dead-letter depths; with `position`
    /// nil, starts `backlog` events behind the log's head.
    func flowSample(after position: Int64?, backlog: Int64, limit: Int) async throws -> FlowSample
}

/// `AdminOperating` on the edge's broker connection and its primary pool.
struct LiveAdminOperations: AdminOperating {
    let amqp: AMQPConnection
    let pool: PostgresPool
    let managementURL: String?

    var brokerConnected: Bool { amqp.isConnected }

    func overview() async throws -> SystemStatus.Report {
        try await SystemStatus(
            amqp: amqp, pool: pool, managementURL: managementURL,
            vhost: amqp.configuration.endpoints.first?.vhost ?? "/"
        ).report()
    }

    func depth(of queue: String) async throws -> Int? {
        do {
            return try await amqp.inspectQueue(queue).messageCount
        } catch let error as AMQPError where error.replyCode == 404 {
            return nil
        }
    }

    func summary(of queue: String) async throws -> DeadLetters.Summary {
        // Reasons are grouped over the first 500: a look, not a scan of a huge queue.
        try await DeadLetters(amqp: amqp).summary(queue, inspect: 500)
    }

    func peek(_ queue: String, limit: Int) async throws -> [DeadLetters.Letter] {
        try await DeadLetters(amqp: amqp).peek(queue, limit: limit)
    }

    func redrive(_ queue: String, selection: DeadLetters.Selection, progress: @escaping @Sendable (Int) -> Void)
        async throws -> DeadLetters.RedriveOutcome
    {
        try await DeadLetters(amqp: amqp).redrive(queue, selection: selection) { done, _ in progress(done) }
    }

    func purge(_ queue: String) async throws -> Int {
        try await DeadLetters(amqp: amqp).purge(queue)
    }

    func replayDryRun(
        projections: [String], progress: @escaping @Sendable (ProjectionRebuild.Progress) -> Void
    ) async throws -> [ProjectionRebuild.Difference] {
        try await ProjectionRebuild(pool: pool, projections: projections).dryRun(progress: progress)
    }

    func rebuildCheck(order: UUID) async throws -> OrderRebuildCheck.Outcome? {
        try await OrderRebuildCheck(pool: pool).check(order)
    }

    func flowSample(after position: Int64?, backlog: Int64, limit: Int) async throws -> FlowSample {
        let (events, through) = try await pool.withConnection { connection -> ([FlowEvent], Int64) in
            // The head first: events committed after it are read by the next sample.
            let head = try await EventLog.head(on: connection)
            let start = position ?? max(0, head - backlog)
            let events = try await connection.query(
                """
                SELECT position, type, correlation_id, occurred_at FROM eventlog.events
                WHERE position > \(start) AND position <= \(head)
                  AND type IN ('order.placed', 'order.confirmed', 'order.rejected', 'order.cancelled')
                ORDER BY position LIMIT \(limit)
                """
            ).map { row in
                FlowEvent(
                    position: try row.decode(0), type: try row.decode(1), orderId: try row.decode(2),
                    occurredAt: try row.decode(3))
            }
            return (events, events.count == limit ? events.last!.position : head)
        }
        var deadLetters: Int?
        if amqp.isConnected {
            var total = 0
            for queue in DeadLetters.queues { total += (try? await amqp.inspectQueue(queue).messageCount) ?? 0 }
            deadLetters = total
        }
        return FlowSample(events: events, position: through, deadLetters: deadLetters)
    }
}
