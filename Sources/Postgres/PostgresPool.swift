import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A bounded pool of PostgreSQL connections, each with its own thread for libpq's blocking calls.
///
/// At most `maxConnections` are open; a caller that finds none free waits up to
/// `acquireTimeout`, then gets `PostgresError.poolTimeout`. A connection that broke (the server
/// restarted, say) is dropped, and an idle one is checked before it is lent again, so the next
/// caller gets a fresh connection.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    private let state = Mutex(State())
    private let logger: Logger

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Grant, any Error>
    }

    /// What a waiter is handed: a connection, or the right to open one.
    private enum Grant: @unchecked Sendable {  // PostgresConnection is confined by the lease
        case connection(PostgresConnection)
        case slot
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID = 0
        var closed = false
    }

    public init(configuration: PostgresConfiguration, logger: Logger = Logger(label: "depot.postgres")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Lends a connection to `body` and takes it back afterwards, whatever happens.
    ///
    /// Nonisolated code in `body` runs on the connection's own thread (a task executor
    /// preference), so its statements need no thread hop each.
    @discardableResult
    public func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let result = try await withTaskExecutorPreference(connection.thread) {
                let result = try await body(connection)
                try await connection.flush()
                return result
            }
            release(connection)
            return result
        } catch {
            connection.deferred = []
            release(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    ///
    /// BEGIN is not sent on its own: it goes with the body's first statement in one pipelined
    /// round trip, so a one-statement transaction costs two round trips, not three.
    @discardableResult
    public func withTransaction<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            connection.beginPending = true
            do {
                let result = try await body(connection)
                if connection.beginPending && connection.deferred.isEmpty {
                    connection.beginPending = false  // no statement ran: nothing to commit
                } else {
                    try await connection.execute("COMMIT")  // deferred statements travel with it
                }
                return result
            } catch {
                connection.deferred = []
                if connection.beginPending {
                    connection.beginPending = false
                } else if !connection.isBroken {
                    _ = try? await connection.execute("ROLLBACK")
                }
                throw error
            }
        }
    }

    /// Closes every connection and fails waiters. Leased connections close when returned.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            state.open -= state.idle.count
            return (state.idle, state.waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: PostgresError(.poolClosed, message: "the pool is shut down"))
        }
        for connection in idle { await connection.close() }
    }

    /// Opens connections, kept idle for later leases, until `count` are open (at most the pool's
    /// size): a server that cannot give a process what it needs refuses now, at start, rather
    /// than in the middle of work. Throws the first refusal; what opened stays in the pool.
    public func prewarm(_ count: Int) async throws {
        let target = min(count, configuration.options.maxConnections)
        while true {
            let opens = state.withLock { state -> Bool in
                guard !state.closed, state.open < target else { return false }
                state.open += 1
                return true
            }
            guard opens else { return }
            release(try await openConnection())
        }
    }

    /// Connections open now, and how many callers wait (for status and metrics).
    public var usage: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }

    // MARK: - Leasing

    private enum LeaseAction {
        case reuse(PostgresConnection)
        case open
        case wait
        case fail(PostgresError)
    }

    private func lease() async throws -> PostgresConnection {
        while true {
            let action = state.withLock { state -> LeaseAction in
                if state.closed { return .fail(PostgresError(.poolClosed, message: "the pool is shut down")) }
                if let connection = state.idle.popLast() { return .reuse(connection) }
                if state.open < configuration.options.maxConnections {
                    state.open += 1
                    return .open
                }
                return .wait
            }
            switch action {
            case .fail(let error):
                throw error
            case .reuse(let connection):
                if let checked = await checked(connection) { return checked }
                // It died while idle: give up its slot and go round again.
                state.withLock { $0.open -= 1 }
            case .open:
                return try await openConnection()
            case .wait:
                switch try await waitForGrant() {
                case .connection(let connection):
                    if let checked = await checked(connection) { return checked }
                    return try await openConnection()  // keep the dead one's slot for a new one
                case .slot:
                    return try await openConnection()
                }
            }
        }
    }

    private func checked(_ connection: PostgresConnection) async -> PostgresConnection? {
        if ContinuousClock.now - connection.lastReleased < configuration.options.idleCheckAfter { return connection }
        if await connection.isAlive() { return connection }
        logger.debug("dropping a dead idle connection")
        await connection.close()
        return nil
    }

    /// Opens a connection in a slot already counted in `open`.
    private func openConnection() async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(configuration)
        } catch {
            giveUpSlot()
            throw error
        }
    }

    private func giveUpSlot() {
        let waiter = state.withLock { state -> Waiter? in
            guard !state.closed, !state.waiters.isEmpty else {
                state.open -= 1
                return nil
            }
            return state.waiters.removeFirst()  // the slot passes to it
        }
        waiter?.continuation.resume(returning: .slot)
    }

    private func waitForGrant() async throws -> Grant {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timeout = configuration.options.acquireTimeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                state.withLock { $0.waiters.append(Waiter(id: id, continuation: continuation)) }
                let nanoseconds =
                    timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(nanoseconds)) {
                    self.removeWaiter(
                        id,
                        failing: PostgresError(
                            .poolTimeout,
                            message:
                                "no database connection became free within \(timeout) (pool of \(self.configuration.options.maxConnections))"
                        ))
                }
            }
        } onCancel: {
            removeWaiter(id, failing: CancellationError())
        }
    }

    private func removeWaiter(_ id: Int, failing error: any Error) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    private func release(_ connection: PostgresConnection) {
        connection.lastReleased = .now
        if connection.isBroken {
            giveUpSlot()
            return
        }
        let waiter = state.withLock { state -> Waiter? in
            if state.closed {
                state.open -= 1
                return nil
            }
            if state.waiters.isEmpty {
                state.idle.append(connection)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: .connection(connection))
        // A closed pool drops the connection; deinit finishes it.
    }
}
