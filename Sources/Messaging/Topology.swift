import AMQP
import DepotModel

/// A service's durable queue: what it is bound to, and how its failed messages are retried.
public struct QueueSpec: Sendable {
    public struct Binding: Sendable, Hashable {
        public var exchange: String
        public var routingKey: String
        public init(exchange: String, routingKey: String) {
            self.exchange = exchange
            self.routingKey = routingKey
        }
    }

    public var name: String
    public var bindings: [Binding]
    /// Only one consumer at a time gets deliveries (the others stand by), so order is kept.
    public var singleActiveConsumer: Bool
    /// Delay before each retry; a message that has failed `retryDelays.count + 1` times is
    /// dead-lettered.
    public var retryDelays: [Duration]

    public init(
        name: String, handles types: [MessageType], singleActiveConsumer: Bool = false,
        retryDelays: [Duration] = QueueSpec.defaultRetryDelays
    ) {
        self.init(
            name: name, bindings: types.map { Binding(exchange: $0.exchange, routingKey: $0.rawValue) },
            singleActiveConsumer: singleActiveConsumer, retryDelays: retryDelays)
    }

    public init(
        name: String, bindings: [Binding], singleActiveConsumer: Bool = false,
        retryDelays: [Duration] = QueueSpec.defaultRetryDelays
    ) {
        self.name = name
        self.bindings = bindings
        self.singleActiveConsumer = singleActiveConsumer
        self.retryDelays = retryDelays
    }

    public static let defaultRetryDelays: [Duration] = [
        .milliseconds(500), .seconds(2), .seconds(10), .seconds(30), .seconds(60),
    ]

    /// The queue collecting this queue's dead letters (bound to `depot.dead` by the queue name).
    public var deadLetterQueue: String { "\(name).dead" }

    /// The holding queue for a retry after `delay`; its messages expire back into this queue.
    public func retryQueue(after delay: Duration) -> String { "\(name).retry.\(Self.format(delay))" }

    static func format(_ delay: Duration) -> String {
        let ms = Int(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}

/// Where each queue lives in a cluster (docs/interface.md §2, `DEPOT_QUEUE_TYPE`).
public enum QueueType: String, Sendable {
    case classic, quorum
}

/// Declares Depot's exchanges and queues. Every component declares what it uses at start;
/// declaring is idempotent, and the connection declares it again after a reconnection.
public enum Topology {
    public static func declareExchanges(on amqp: AMQPConnection) async throws {
        try await amqp.declareExchange(Exchanges.commands, type: .direct)
        try await amqp.declareExchange(Exchanges.events, type: .topic)
        try await amqp.declareExchange(Exchanges.dead, type: .topic)
    }

    public static func declare(_ queue: QueueSpec, on amqp: AMQPConnection, queueType: QueueType) async throws {
        var arguments: FieldTable = ["x-queue-type": .string(queueType.rawValue)]
        if queue.singleActiveConsumer { arguments["x-single-active-consumer"] = .bool(true) }
        try await amqp.declareQueue(queue.name, arguments: arguments)
        for binding in queue.bindings {
            try await amqp.bindQueue(queue.name, exchange: binding.exchange, routingKey: binding.routingKey)
        }
        try await amqp.declareQueue(queue.deadLetterQueue, arguments: ["x-queue-type": .string(queueType.rawValue)])
        try await amqp.bindQueue(queue.deadLetterQueue, exchange: Exchanges.dead, routingKey: queue.name)
        // Retry holding queues: messages wait out their TTL, then the default exchange routes
        // them back to this queue alone (not to every queue bound to the original exchange).
        for delay in Set(queue.retryDelays) {
            try await amqp.declareQueue(
                queue.retryQueue(after: delay),
                arguments: [
                    "x-queue-type": .string(queueType.rawValue),
                    "x-message-ttl": .int64(
                        Int64(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)),
                    "x-dead-letter-exchange": .string(""),
                    "x-dead-letter-routing-key": .string(queue.name),
                ])
        }
    }
}
