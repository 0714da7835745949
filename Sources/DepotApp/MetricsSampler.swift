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
    private let reconnections = Gauge(label: "depot_amqp_reconnections")
    private let outboxGauges: [String: (backlog: Gauge, oldest: Gauge)]
    private let projectionGauges: [String: (position: Gauge, lag: Gauge)]

    init(components: [Component], pool: PostgresPool, amqp: AMQPConnection) {
        self.components = components
        self.pool = pool
        self.amqp = amqp
        outboxGauges = Dictionary(
            uniqueKeysWithValues: components.compactMap(\.outboxSchema).map {
                (
                    $0,
                    (
                        Gauge(label: "depot_outbox_backlog", dimensions: [("outbox", $0)]),
                        Gauge(label: "depot_outbox_oldest_seconds", dimensions: [("outbox", $0)])
                    )
                )
            })
        projectionGauges = Dictionary(
            uniqueKeysWithValues: Projections.names.map {
                (
                    $0,
                    (
                        Gauge(label: "depot_projection_position", dimensions: [("projection", $0)]),
                        Gauge(label: "depot_projection_lag_events", dimensions: [("projection", $0)])
                    )
                )
            })
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sample()
                try? await Task.sleep(for: interval)
            }
        }
    }

    func sample() async {
        reconnections.record(amqp.reconnections)
        for (schema, gauges) in outboxGauges {
            guard let backlog = try? await pool.withConnection({ try await Outbox(schema: schema).backlog(on: $0) })
            else { continue }
            gauges.backlog.record(backlog.count)
            gauges.oldest.record(backlog.oldest.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
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
            projectionGauges[name]?.position.record(position)
            projectionGauges[name]?.lag.record(head - position + Int64(waiting))
        }
    }
}
