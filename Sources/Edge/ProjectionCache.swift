import Synchronization

/// Encoded projection views kept in memory, dropped when the projector reports a change to
/// them (the same NOTIFY that wakes `Prefer: wait`), so a hot read costs no database round trip
/// and no JSON encoding.
///
/// A view read from the database is stored only if no invalidation happened since the read
/// began (a global generation), so an old row can never outlive the notice about its change.
/// Staleness is bounded by the notice's delivery, as with a read replica.
final class ProjectionCache: Sendable {
    struct Entry: Sendable {
        var body: [UInt8]
        var etag: String
        /// The owning customer (orders); nil for catalog entries.
        var owner: String?
        var isFinal: Bool
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    func get(_ key: String) -> Entry? { state.withLock { $0.entries[key] } }

    /// The generation to pass to `put` for a read that starts now.
    var generation: UInt64 { state.withLock { $0.generation } }

    func put(_ key: String, _ entry: Entry, readAt generation: UInt64) {
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = entry
        }
    }

    func invalidate(_ keys: [String]) {
        state.withLock { state in
            state.generation &+= 1
            for key in keys { state.entries[key] = nil }
        }
    }

    func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll(keepingCapacity: true)
        }
    }
}
