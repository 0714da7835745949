import Metrics

/// One queue's consumer metrics, made once per consumer (a metric object per message would be
/// a factory lookup and a lock on every delivery).
public struct ConsumerMetrics: Sendable {
    enum Outcome: String, CaseIterable {
        case ok, duplicate, retried
        case deadLettered = "dead_lettered"
    }

    private let consumed: [Outcome: Counter]
    let handling: Timer
    let conflictRetries: [String: Counter]
    let databaseWaits: Counter
    let batchSize: Recorder
    let batchSplits: Counter

    init(queue: String) {
        consumed = Dictionary(
            uniqueKeysWithValues: Outcome.allCases.map {
                (
                    $0,
                    Counter(
                        label: "depot_messages_consumed_total",
                        dimensions: [("queue", queue), ("outcome", $0.rawValue)])
                )
            })
        handling = Timer(label: "depot_handling_seconds", dimensions: [("queue", queue)])
        // Transactions tried again after a conflict, by reason: operators watch this for hot rows.
        conflictRetries = Dictionary(
            uniqueKeysWithValues: ["deadlock", "serialization_failure"].map {
                ($0, Counter(label: "depot_transaction_retries_total", dimensions: [("queue", queue), ("reason", $0)]))
            })
        databaseWaits = Counter(label: "depot_database_unavailable_waits_total", dimensions: [("queue", queue)])
        // Messages per transaction: a histogram (buckets set at bootstrap) shows batching at work.
        batchSize = Recorder(label: Self.batchSizeLabel, dimensions: [("queue", queue)], aggregate: true)
        batchSplits = Counter(label: "depot_consumer_batch_splits_total", dimensions: [("queue", queue)])
    }

    public static let batchSizeLabel = "depot_consumer_batch_size"
    public static let batchSizeBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256]

    func count(_ outcome: Outcome) { consumed[outcome]?.increment() }
}
