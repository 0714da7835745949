import DepotModel
import Metrics
import Prometheus

/// The edge's own metrics, made once from the registry the application passes in (it also
/// serves that registry on `/metrics`), so a request only looks its counter up.
struct EdgeMetrics: Sendable {
    enum Outcome: String, Sendable, CaseIterable {
        case confirmed, unconfirmed
        case brokerDown = "broker_down"
    }

    /// `depot_edge_commands_total{type, outcome}`.
    private let commands: [MessageType: [Outcome: Metrics.Counter]]
    /// `depot_edge_confirm_seconds{type}`: from the publish to the broker's confirm.
    private let confirms: [MessageType: Metrics.Timer]

    init(registry: PrometheusCollectorRegistry) {
        let factory = PrometheusMetricsFactory(registry: registry)
        var commands: [MessageType: [Outcome: Metrics.Counter]] = [:]
        var confirms: [MessageType: Metrics.Timer] = [:]
        for type in MessageType.allCases where type.isCommand {
            for outcome in Outcome.allCases {
                commands[type, default: [:]][outcome] = Metrics.Counter(
                    label: "depot_edge_commands_total",
                    dimensions: [("type", type.rawValue), ("outcome", outcome.rawValue)], factory: factory)
            }
            confirms[type] = Metrics.Timer(
                label: "depot_edge_confirm_seconds", dimensions: [("type", type.rawValue)], factory: factory)
        }
        self.commands = commands
        self.confirms = confirms
    }

    func command(_ type: MessageType, _ outcome: Outcome) {
        commands[type]?[outcome]?.increment()
    }

    func confirmed(_ type: MessageType, after duration: Duration) {
        confirms[type]?.record(duration: duration)
    }
}
