import AMQP
import Foundation
import Messaging
import Metrics
import Postgres
import Projector
import ServiceLifecycle

/// Gauges that no handler sees change by itself — outbox backlogs, projection positions and
/// lag, broker reconnections — read every few seconds for `/metrics`.
struct MetricsSampler: Service {
    let components: [Component]
    let pool: PostgresPool
    let amqp: AMQPConnection
    var interval: Duration = .seconds(5)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sample()
                try? await Task.sleep(for: interval)
            }
        }
    }

    func sample() async {
        Gauge(label: "depot_amqp_reconnections").record(amqp.reconnections)
        for schema in components.compactMap(\.outboxSchema) {
            guard let backlog = try? await pool.withConnection({ try await Outbox(schema: schema).backlog(on: $0) }) else { continue }
            Gauge(label: "depot_outbox_backlog", dimensions: [("outbox", schema)]).record(backlog.count)
            Gauge(label: "depot_outbox_oldest_seconds", dimensions: [("outbox", schema)])
                .record(backlog.oldest.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
        }
        guard components.contains(.projector) else { return }
        // Lag: events in the log not yet projected, plus events published but not yet in the log.
        let waiting = (try? await amqp.inspectQueue(ProjectorHandler.queue.name).messageCount) ?? 0
        guard
            let (head, checkpoints) = try? await pool.withConnection({ connection in
                (try await EventLog.head(on: connection), try await Projections.checkpoints(on: connection))
            })
        else { return }
        for name in Projections.names {
            let position = checkpoints[name] ?? 0
            Gauge(label: "depot_projection_position", dimensions: [("projection", name)]).record(position)
            Gauge(label: "depot_projection_lag_events", dimensions: [("projection", name)]).record(head - position + Int64(waiting))
        }
    }
}
