import Foundation
import Logging
import Synchronization

/// A connection to RabbitMQ that survives broker restarts.
///
/// Every call may be made from any task: each is sent to the connection's own thread, the
/// only thread that touches librabbitmq's state, and answered through a continuation. When
/// the connection is lost the thread reconnects with backoff and jitter (trying each endpoint
/// in turn), declares again everything declared through it, resumes every consumer, and sends
/// again every publish not yet confirmed — so a publish may reach the broker twice, never
/// zero times while its caller waits. Declares and other RPCs asked for while reconnecting wait
/// for the connection, up to `rpcTimeout`.
///
/// Keep the connection referenced while its consumers run: when the last reference goes, the
/// connection closes as if `close()` had been called.
public final class AMQPConnection: Sendable {
    let commands: CommandQueue
    let stats: ConnectionStats
    public let configuration: AMQPConfiguration

    private init(configuration: AMQPConfiguration, commands: CommandQueue, stats: ConnectionStats) {
        self.configuration = configuration
        self.commands = commands
        self.stats = stats
    }

    /// Connects, trying every endpoint until `initialConnectDeadline` passes.
    public static func connect(_ configuration: AMQPConfiguration, logger: Logger = Logger(label: "depot.amqp"))
        async throws -> AMQPConnection
    {
        let commands = CommandQueue()
        let stats = ConnectionStats()
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                let connection = ConnectionThread(
                    configuration: configuration, logger: logger, commands: commands, stats: stats)
                connection.run(firstConnection: ready)
            }
            thread.name = "amqp-connection"
            thread.start()
        }
        return AMQPConnection(configuration: configuration, commands: commands, stats: stats)
    }

    deinit {
        // Without an explicit close the thread would run on: ask it to end.
        _ = commands.send(.close(nil))
    }

    /// True while a connection to the broker is open.
    public var isConnected: Bool { stats.connected.load(ordering: .acquiring) }

    /// How many times the connection has been re-established.
    public var reconnections: Int { stats.reconnections.load(ordering: .relaxed) }

    // MARK: - Publishing

    /// Publishes a message and returns once the broker has confirmed it.
    ///
    /// Throws `.unroutable` for a mandatory publish that matched no queue, `.channelClosed`
    /// (reply code 404) for a missing exchange, `.publishNacked` when the broker refuses it,
    /// and `.timeout` when no confirm came within `timeout` (a publish not yet sent by then is
    /// not sent at all). Without a timeout it waits across reconnections.
    public func publish(
        _ message: OutgoingMessage, exchange: String, routingKey: String, mandatory: Bool = false,
        timeout: Duration? = nil
    ) async throws {
        let id = commands.nextPublishID.add(1, ordering: .relaxed).oldValue
        let publish = PendingPublish(
            id: id, exchange: exchange, routingKey: routingKey, mandatory: mandatory, message: message)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if !commands.send(.publish(publish, PublishWaiter(continuation: continuation, deadline: deadline))) {
                continuation.resume(throwing: AMQPError(.closed, context: "publish"))
            }
        }
    }

    /// One message of a batch publish.
    public struct BatchMessage: Sendable {
        public var message: OutgoingMessage
        public var exchange: String
        public var routingKey: String
        public var mandatory: Bool

        public init(_ message: OutgoingMessage, exchange: String, routingKey: String, mandatory: Bool = false) {
            self.message = message
            self.exchange = exchange
            self.routingKey = routingKey
            self.mandatory = mandatory
        }
    }

    /// Publishes messages in the given order, pipelined on one channel, and returns when every
    /// one is settled: nil where the broker confirmed, else the error that message met (as for
    /// `publish`). The broker receives them in order, so two messages of one batch never swap.
    public func publish(batch: [BatchMessage], timeout: Duration? = nil) async -> [AMQPError?] {
        guard !batch.isEmpty else { return [] }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let results = Mutex([AMQPError?](repeating: nil, count: batch.count))
        let remaining = Atomic(batch.count)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            for (index, item) in batch.enumerated() {
                let id = commands.nextPublishID.add(1, ordering: .relaxed).oldValue
                let publish = PendingPublish(
                    id: id, exchange: item.exchange, routingKey: item.routingKey, mandatory: item.mandatory,
                    message: item.message)
                let waiter = PublishWaiter(deadline: deadline) { error in
                    if let error { results.withLock { $0[index] = error } }
                    if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done.resume() }
                }
                if !commands.send(.publish(publish, waiter)) { waiter.complete(AMQPError(.closed, context: "publish")) }
            }
        }
        return results.withLock { $0 }
    }

    // MARK: - Topology

    /// Declares an exchange (and declares it again after every reconnection).
    public func declareExchange(
        _ name: String, type: ExchangeType = .direct, durable: Bool = true, autoDelete: Bool = false,
        internal: Bool = false, arguments: FieldTable = [:]
    ) async throws {
        _ = try await perform { connection throws(AMQPError) in
            try connection.declareAndRecord(
                .exchange(
                    name: name, type: type.name, durable: durable, autoDelete: autoDelete, internal: `internal`,
                    arguments: arguments))
        }
    }

    /// Declares a queue (and declares it again after every reconnection).
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: FieldTable = [:]
    ) async throws -> QueueInfo {
        try await perform { connection throws(AMQPError) in
            try connection.declareAndRecord(
                .queue(name: name, durable: durable, exclusive: exclusive, autoDelete: autoDelete, arguments: arguments)
            )!
        }
    }

    /// Binds a queue to an exchange (and again after every reconnection).
    public func bindQueue(_ queue: String, exchange: String, routingKey: String, arguments: FieldTable = [:])
        async throws
    {
        _ = try await perform { connection throws(AMQPError) in
            try connection.declareAndRecord(
                .binding(queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments))
        }
    }

    /// Reads a queue's depth and consumer count without changing it (a passive declare);
    /// throws `.channelClosed` with reply code 404 when it does not exist.
    public func inspectQueue(_ name: String) async throws -> QueueInfo {
        try await perform { connection throws(AMQPError) in
            try connection.declareQueue(
                .queue(name: name, durable: false, exclusive: false, autoDelete: false, arguments: [:]), passive: true)
        }
    }

    /// Whether an exchange exists (a passive declare).
    public func exchangeExists(_ name: String) async throws -> Bool {
        do {
            try await perform { connection throws(AMQPError) in
                try connection.declare(
                    .exchange(
                        name: name, type: "direct", durable: false, autoDelete: false, internal: false, arguments: [:]),
                    passive: true)
            }
            return true
        } catch let error as AMQPError where error.replyCode == 404 {
            return false
        }
    }

    /// Deletes a queue and returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String) async throws -> Int {
        try await perform { connection throws(AMQPError) in try connection.deleteQueue(name) }
    }

    public func deleteExchange(_ name: String) async throws {
        try await perform { connection throws(AMQPError) in try connection.deleteExchange(name) }
    }

    /// Removes every ready message from a queue and returns how many there were.
    @discardableResult
    public func purgeQueue(_ name: String) async throws -> Int {
        try await perform { connection throws(AMQPError) in try connection.purgeQueue(name) }
    }

    /// Takes one message from a queue without removing it for good (basic.get, no auto-ack):
    /// settle it with `settle(_:ack:)`; if the connection closes first it goes back to the queue.
    /// Nil when the queue is empty.
    public func get(queue: String) async throws -> FetchedMessage? {
        try await perform { connection throws(AMQPError) in try connection.basicGet(queue) }
    }

    /// Acks a fetched message (it is gone) or returns it to its queue.
    public func settle(_ message: FetchedMessage, ack: Bool) async throws {
        try await perform { connection throws(AMQPError) in try connection.settleFetched(message, ack: ack) }
    }

    // MARK: - Consuming

    /// Starts consuming a queue with manual acknowledgement.
    ///
    /// - Parameter prefetch: the most unsettled deliveries the broker sends (basic.qos).
    public func consume(
        queue: String, prefetch: UInt16 = 100, tag: String? = nil, arguments: FieldTable = [:]
    ) async throws -> AMQPConsumer {
        let tag = tag ?? "depot-\(UUID().uuidString.lowercased())"
        let (stream, deliveries) = AsyncThrowingStream<Delivery, any Error>.makeStream()
        let commands = self.commands
        deliveries.onTermination = { termination in
            if case .cancelled = termination { _ = commands.send(.cancelConsumer(tag: tag, done: nil)) }
        }
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, any Error>) in
            let registration = ConsumerRegistration(
                queue: queue, tag: tag, prefetch: prefetch, arguments: arguments, deliveries: deliveries, ready: ready)
            if !commands.send(.consume(registration)) {
                ready.resume(throwing: AMQPError(.closed, context: "consume"))
            }
        }
        return AMQPConsumer(queue: queue, tag: tag, stream: stream, commands: commands)
    }

    // MARK: - Closing

    /// Waits up to `closeGracePeriod` for outstanding confirms, closes the connection and ends
    /// every consumer's sequence. Safe to call more than once.
    public func close() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            if !commands.send(.close(done)) { done.resume() }
        }
    }

    /// Runs `body` on the connection thread.
    func perform<T: Sendable>(_ body: @escaping @Sendable (ConnectionThread) throws(AMQPError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let sent = commands.send(
                .perform { connection in
                    do {
                        continuation.resume(returning: try body(connection))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                })
            if !sent { continuation.resume(throwing: AMQPError(.closed, context: "the connection is closed")) }
        }
    }
}
