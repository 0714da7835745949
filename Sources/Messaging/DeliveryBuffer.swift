import AMQP
import Synchronization

/// Deliveries that arrived and wait for a handling slot, in arrival order; one dispatcher takes
/// them in batches.
final class DeliveryBuffer: Sendable {
    private struct State {
        var deliveries: [Delivery] = []
        var closed = false
    }
    private let state = Mutex(State())
    /// Signalled on every arrival and at close.
    let arrived = WakeSignal()

    enum Taken {
        case deliveries([Delivery])
        case empty
        /// Closed and empty: nothing more will come.
        case finished
    }

    func append(_ delivery: Delivery) {
        state.withLock { $0.deliveries.append(delivery) }
        arrived.signal()
    }

    func close() {
        state.withLock { $0.closed = true }
        arrived.signal()
    }

    /// The oldest `limit` deliveries at most; never waits for more to come.
    func take(upTo limit: Int) -> Taken {
        state.withLock { state in
            guard !state.deliveries.isEmpty else { return state.closed ? .finished : .empty }
            let count = min(limit, state.deliveries.count)
            let taken = Array(state.deliveries.prefix(count))
            state.deliveries.removeFirst(count)
            return .deliveries(taken)
        }
    }
}
