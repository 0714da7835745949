import Edge
import Prometheus

/// The process's metrics: one Prometheus registry behind swift-metrics, set up once by the
/// executable next to its logging, before any metric is made, and handed to what serves it.
public struct ProcessMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Bootstraps swift-metrics; call once per process.
    public static func bootstrap() -> ProcessMetrics {
        ProcessMetrics(registry: EdgeServer.metricsRegistry)
    }
}
