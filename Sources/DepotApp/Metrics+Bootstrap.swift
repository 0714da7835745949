import Messaging
import Metrics
import Prometheus

/// The process's metrics: one Prometheus registry behind swift-metrics, set up once by the
/// executable next to its logging, before any metric is made, and handed to what serves it.
public struct ProcessMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Bootstraps swift-metrics; call once per process (swift-metrics allows one bootstrap).
    public static func bootstrap() -> ProcessMetrics {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets[ConsumerMetrics.batchSizeLabel] = ConsumerMetrics.batchSizeBuckets
        MetricsSystem.bootstrap(factory)
        return ProcessMetrics(registry: registry)
    }
}
