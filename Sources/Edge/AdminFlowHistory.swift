import DepotModel
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The console's charts: orders placed, confirmed, rejected and cancelled per second, end-to-end
/// latency, and new dead letters, in one-second buckets of the last hour — a ring of 3,600
/// slots, so memory stays the same however long the edge runs.
///
/// Fed by `AdminFlowSampler` from the event log (the order events since the last sample, by
/// position: never a scan) and the dead-letter queues' depths.
final class AdminFlowHistory: Sendable {
    static let seconds = 3_600
    /// Latencies kept per second for the percentiles; beyond it a second keeps every n-th.
    static let latencySamplesPerSecond = 64
    /// Orders placed whose outcome has not been seen yet; older ones are dropped past this.
    static let pendingLimit = 50_000

    struct Bucket: Sendable {
        var second: Int64 = -1
        var counts = Totals()
        var latencies: [Double] = []
        var finals = 0
    }

    private struct State {
        var buckets = [Bucket](repeating: Bucket(), count: AdminFlowHistory.seconds)
        /// Order id → when it was placed, until its final event.
        var placedAt: [String: Date] = [:]
        var lastDeadLetters: Int?
        var position: Int64?
    }

    private let state = Mutex(State())

    /// The position the next sample starts after (nil before the first).
    var position: Int64? { state.withLock { $0.position } }

    /// Adds a sample's events and dead-letter depth, taken at `now`.
    func record(_ sample: FlowSample, now: Date = Date()) {
        let oldest = Int64(now.timeIntervalSince1970) - Int64(Self.seconds) + 1
        state.withLock { state in
            for event in sample.events {
                let second = Int64(event.occurredAt.timeIntervalSince1970.rounded(.down))
                if event.type == MessageType.orderPlaced.rawValue {
                    if state.placedAt.count >= Self.pendingLimit {
                        let cutoff = now.addingTimeInterval(-Double(Self.seconds))
                        state.placedAt = state.placedAt.filter { $0.value > cutoff }
                    }
                    if state.placedAt.count < Self.pendingLimit { state.placedAt[event.orderId] = event.occurredAt }
                } else if second >= oldest {
                    let placed = state.placedAt.removeValue(forKey: event.orderId)
                    Self.update(&state.buckets, second) { bucket in
                        bucket.finals += 1
                        if let placed {
                            let latency = event.occurredAt.timeIntervalSince(placed) * 1000
                            if bucket.latencies.count < Self.latencySamplesPerSecond {
                                bucket.latencies.append(latency)
                            } else {
                                // Reservoir sampling keeps the percentiles fair for busy seconds.
                                let slot = Int.random(in: 0..<bucket.finals)
                                if slot < Self.latencySamplesPerSecond { bucket.latencies[slot] = latency }
                            }
                        }
                    }
                } else {
                    state.placedAt[event.orderId] = nil
                }
                guard second >= oldest else { continue }
                Self.update(&state.buckets, second) { bucket in
                    switch MessageType(rawValue: event.type) {
                    case .orderPlaced?: bucket.counts.placed += 1
                    case .orderConfirmed?: bucket.counts.confirmed += 1
                    case .orderRejected?: bucket.counts.rejected += 1
                    case .orderCancelled?: bucket.counts.cancelled += 1
                    default: break
                    }
                }
            }
            if let depth = sample.deadLetters {
                // New dead letters are the growth of the dead-letter queues between samples (a
                // redrive or purge shrinks them; that is not counted).
                if let last = state.lastDeadLetters, depth > last {
                    Self.update(&state.buckets, Int64(now.timeIntervalSince1970)) {
                        $0.counts.deadLettered += depth - last
                    }
                }
                state.lastDeadLetters = depth
            }
            state.position = sample.position
        }
    }

    private static func update(_ buckets: inout [Bucket], _ second: Int64, _ change: (inout Bucket) -> Void) {
        let index = Int(second % Int64(seconds))
        if buckets[index].second != second { buckets[index] = Bucket(second: second) }
        change(&buckets[index])
    }

    /// One point of a chart: `step` seconds ending at `at`.
    struct Point: Sendable, Encodable {
        var at: String
        var placedPerSecond: Double
        var confirmedPerSecond: Double
        var rejectedPerSecond: Double
        var cancelledPerSecond: Double
        var latencyP50Ms: Double?
        var latencyP99Ms: Double?
        var deadLetteredPerMinute: Double

        enum CodingKeys: String, CodingKey {
            case at
            case placedPerSecond = "placed_per_second"
            case confirmedPerSecond = "confirmed_per_second"
            case rejectedPerSecond = "rejected_per_second"
            case cancelledPerSecond = "cancelled_per_second"
            case latencyP50Ms = "latency_p50_ms"
            case latencyP99Ms = "latency_p99_ms"
            case deadLetteredPerMinute = "dead_lettered_per_minute"
        }
    }

    /// Counts of one second, of a chart's point, or of the whole window.
    struct Totals: Sendable, Encodable {
        var placed = 0
        var confirmed = 0
        var rejected = 0
        var cancelled = 0
        var deadLettered = 0

        static func += (lhs: inout Totals, rhs: Totals) {
            lhs.placed += rhs.placed
            lhs.confirmed += rhs.confirmed
            lhs.rejected += rhs.rejected
            lhs.cancelled += rhs.cancelled
            lhs.deadLettered += rhs.deadLettered
        }

        enum CodingKeys: String, CodingKey {
            case placed, confirmed, rejected, cancelled
            case deadLettered = "dead_lettered"
        }
    }

    struct Series: Sendable, Encodable {
        var windowSeconds: Int
        var stepSeconds: Int
        var points: [Point]
        var totals: Totals
        /// The event log position sampled up to (nil before the first sample).
        var position: Int64?

        enum CodingKeys: String, CodingKey {
            case points, totals, position
            case windowSeconds = "window_seconds"
            case stepSeconds = "step_seconds"
        }
    }

    /// The last `window` seconds in points of `step` seconds, the newest last.
    func series(window: Int, step: Int, now: Date = Date()) -> Series {
        let end = Int64(now.timeIntervalSince1970)
        return state.withLock { state in
            var points: [Point] = []
            var totals = Totals()
            let count = window / step
            for index in 0..<count {
                let last = end - Int64((count - 1 - index) * step)
                var merged = Totals()
                var latencies: [Double] = []
                for second in (last - Int64(step) + 1)...last {
                    let bucket = state.buckets[Int(second % Int64(Self.seconds))]
                    guard bucket.second == second else { continue }
                    merged += bucket.counts
                    latencies += bucket.latencies
                }
                totals += merged
                let sorted = latencies.sorted()
                func percentile(_ p: Double) -> Double? {
                    sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
                }
                let seconds = Double(step)
                points.append(
                    Point(
                        at: RFC3339.string(Date(timeIntervalSince1970: Double(last + 1))),
                        placedPerSecond: Double(merged.placed) / seconds,
                        confirmedPerSecond: Double(merged.confirmed) / seconds,
                        rejectedPerSecond: Double(merged.rejected) / seconds,
                        cancelledPerSecond: Double(merged.cancelled) / seconds,
                        latencyP50Ms: percentile(0.5), latencyP99Ms: percentile(0.99),
                        deadLetteredPerMinute: Double(merged.deadLettered) * 60 / seconds))
            }
            return Series(
                windowSeconds: window, stepSeconds: step, points: points, totals: totals, position: state.position)
        }
    }
}

/// Samples the event log and the dead-letter queues into `AdminFlowHistory` every 2 s.
struct AdminFlowSampler: Service {
    let history: AdminFlowHistory
    let admin: any AdminOperating
    let logger: Logger
    var interval: Duration = .seconds(2)

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // At start, the last 20,000 events of the log: enough for a busy last hour
                // after a restart, and a bounded read.
                let sample = try await admin.flowSample(after: history.position, backlog: 20_000, limit: 5_000)
                history.record(sample)
                // Behind (a full batch): take the next at once.
                if sample.events.count == 5_000 { continue }
            } catch {
                logger.debug("flow sample failed", metadata: ["error": "\(String(describing: error).prefix(200))"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
