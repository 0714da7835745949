import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Work for the connection thread, sent from any thread or task.
enum Command: Sendable {
    case publish(PendingPublish, PublishWaiter)
    case settle(Settlement)
    case perform(@Sendable (ConnectionThread) -> Void)
    case consume(ConsumerRegistration)
    case cancelConsumer(tag: String, done: CheckedContinuation<Void, Never>?)
    case close(CheckedContinuation<Void, Never>?)
}

struct PendingPublish: Sendable {
    let id: UInt64
    let exchange: String
    let routingKey: String
    let mandatory: Bool
    let message: OutgoingMessage
}

struct PublishWaiter: Sendable {
    /// Called once on the connection thread: nil when confirmed, else why not.
    let complete: @Sendable (AMQPError?) -> Void
    let deadline: ContinuousClock.Instant?

    init(deadline: ContinuousClock.Instant?, complete: @escaping @Sendable (AMQPError?) -> Void) {
        self.deadline = deadline
        self.complete = complete
    }

    init(continuation: CheckedContinuation<Void, any Error>, deadline: ContinuousClock.Instant?) {
        self.init(deadline: deadline) { error in
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }
}

struct ConsumerRegistration: Sendable {
    let queue: String
    let tag: String
    let prefetch: UInt16
    let arguments: FieldTable
    let deliveries: AsyncThrowingStream<Delivery, any Error>.Continuation
    let ready: CheckedContinuation<Void, any Error>
}

/// The lock-protected queue between Swift code and the connection thread, plus a pipe that
/// wakes the thread from `poll` only when it sleeps, so a burst of publishes costs one write.
final class CommandQueue: Sendable {
    private struct State {
        var commands: [Command] = []
        var sleeping = false
        var closed = false
    }

    private let state = Mutex(State())
    private let wakeRead: Int32
    private let wakeWrite: Int32
    let nextPublishID = Atomic<UInt64>(1)

    init() {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe() failed: \(errno)")
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    var wakeFileDescriptor: Int32 { wakeRead }

    /// Queues a command; false once the connection thread has ended.
    func send(_ command: Command) -> Bool {
        let (accepted, wake) = state.withLock { state -> (Bool, Bool) in
            guard !state.closed else { return (false, false) }
            state.commands.append(command)
            let wake = state.sleeping
            state.sleeping = false
            return (true, wake)
        }
        if wake {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
        return accepted
    }

    func takeAll() -> [Command] {
        state.withLock { state in
            let commands = state.commands
            state.commands.removeAll(keepingCapacity: true)
            return commands
        }
    }

    /// True when the thread may sleep (nothing queued); senders then write to the pipe.
    func prepareToSleep() -> Bool {
        state.withLock { state in
            guard state.commands.isEmpty else { return false }
            state.sleeping = true
            return true
        }
    }

    func didWake() {
        state.withLock { $0.sleeping = false }
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// Refuses further commands and returns those still queued.
    func closeAndDrain() -> [Command] {
        state.withLock { state in
            state.closed = true
            let commands = state.commands
            state.commands.removeAll()
            return commands
        }
    }
}
