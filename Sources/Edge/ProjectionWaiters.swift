import Foundation
import Logging
import Messaging
import Postgres
import ServiceLifecycle
import Synchronization

/// Lets requests with `Prefer: wait=N` sleep until the projector reports a change to their
/// order or product (its NOTIFY after each batch), instead of polling the database.
final class ProjectionWaiters: Service, Sendable {
    private let waiting = Mutex([String: [UUID: WakeSignal]]())
    let listenConfiguration: PostgresConfiguration
    let logger: Logger
    /// Views cached by the routes, dropped here when the projector changes them.
    let cache = ProjectionCache()

    init(listenConfiguration: PostgresConfiguration, logger: Logger) {
        self.listenConfiguration = listenConfiguration
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await notification in PostgresNotifications(
                configuration: self.listenConfiguration, channels: ["depot_projections"])
            {
                if notification.mayHaveMissedNotifications || notification.payload == "*" {
                    self.changed(nil)
                } else {
                    self.changed(notification.payload.split(separator: ",").map(String.init))
                }
            }
        }
    }

    /// Evaluates `check` now and after every change to `key` (and soon after, while a change
    /// is announced but not visible yet), until it returns a value or the deadline passes (then
    /// one last time).
    func wait<T: Sendable>(for key: String, until deadline: ContinuousClock.Instant, check: () async throws -> T?)
        async throws -> T?
    {
        let id = UUID()
        let signal = WakeSignal()
        waiting.withLock { $0[key, default: [:]][id] = signal }
        defer {
            waiting.withLock {
                $0[key]?[id] = nil
                if $0[key]?.isEmpty == true { $0[key] = nil }
            }
        }
        // After a notice whose change `check` did not show yet (the read URL is a standby that
        // lags), look again soon rather than only at the next notice: 10 ms, doubling to 200 ms.
        var recheck: Duration?
        while ContinuousClock.now < deadline {
            if let value = try await check() { return value }
            let wakeAt = recheck.map { min(deadline, ContinuousClock.now + $0) } ?? deadline
            let noticed = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await signal.wait()
                    return true
                }
                group.addTask {
                    try? await Task.sleep(until: wakeAt)
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            recheck = noticed ? .milliseconds(10) : recheck.map { min($0 * 2, .milliseconds(200)) }
        }
        return try await check()
    }

    /// The projector changed the views of `keys` (nil: maybe any): drops them from the cache and
    /// wakes whoever waits on them.
    func changed(_ keys: [String]?) {
        if let keys {
            cache.invalidate(keys)
            wake(keys)
        } else {
            cache.invalidateAll()
            wakeAll()
        }
    }

    private func wake(_ keys: [String]) {
        let signals = waiting.withLock { waiting in keys.flatMap { waiting[$0].map { Array($0.values) } ?? [] } }
        for signal in signals { signal.signal() }
    }

    private func wakeAll() {
        let signals = waiting.withLock { $0.values.flatMap(\.values) }
        for signal in signals { signal.signal() }
    }
}
