import Foundation

/// One message delivered to a consumer.
///
/// Settle it exactly once with `ack()`, `nack(requeue:)` or `reject(requeue:)`. Settling is
/// asynchronous and never blocks; a delivery received before a reconnection can no longer be
/// settled (the broker has already put it back), so such a call is dropped and the message
/// comes again with `redelivered` set.
public struct Delivery: Sendable {
    public let body: [UInt8]
    public let properties: AMQPProperties
    public let exchange: String
    public let routingKey: String
    public let redelivered: Bool
    public let deliveryTag: UInt64
    public let consumerTag: String
    /// The queue this delivery was consumed from.
    public let queue: String
    let settler: Settler

    public var bodyString: String { String(decoding: body, as: UTF8.self) }

    public func ack(multiple: Bool = false) {
        settler.settle(.init(kind: .ack, tag: deliveryTag, multiple: multiple, requeue: false))
    }

    public func nack(requeue: Bool = true, multiple: Bool = false) {
        settler.settle(.init(kind: .nack, tag: deliveryTag, multiple: multiple, requeue: requeue))
    }

    /// Rejects the message; without requeue it goes to the queue's dead-letter exchange, if any.
    public func reject(requeue: Bool = false) {
        settler.settle(.init(kind: .reject, tag: deliveryTag, multiple: false, requeue: requeue))
    }
}

struct Settlement: Sendable {
    enum Kind: Sendable { case ack, nack, reject }
    var kind: Kind
    var tag: UInt64
    var multiple: Bool
    var requeue: Bool
    var channel: UInt16 = 0
    var epoch: UInt64 = 0
}

/// Sends settlements for deliveries of one channel incarnation to the connection thread.
struct Settler: Sendable {
    let commands: CommandQueue
    let channel: UInt16
    let epoch: UInt64

    func settle(_ settlement: Settlement) {
        var settlement = settlement
        settlement.channel = channel
        settlement.epoch = epoch
        _ = commands.send(.settle(settlement))
    }
}

/// Deliveries from one `basic.consume`, as an AsyncSequence.
///
/// The sequence ends when the consumer is cancelled, the connection is closed, or the server
/// cancels it (then it throws `AMQPError.consumerCancelled`). Backpressure comes from the
/// prefetch count: the broker sends at most that many unsettled deliveries.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = Delivery
    public let queue: String
    public let tag: String
    let stream: AsyncThrowingStream<Delivery, any Error>
    let commands: CommandQueue

    public func makeAsyncIterator() -> AsyncThrowingStream<Delivery, any Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }

    /// Asks for deliveries to stop (basic.cancel) without waiting; callable from synchronous
    /// code such as a graceful-shutdown handler. The sequence ends once the broker agrees.
    public func stop() {
        _ = commands.send(.cancelConsumer(tag: tag, done: nil))
    }

    /// Stops deliveries (basic.cancel). Deliveries already received can still be settled.
    public func cancel() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            if !commands.send(.cancelConsumer(tag: tag, done: done)) { done.resume() }
        }
    }
}

/// A message taken with `AMQPConnection.get(queue:)`, not yet settled.
public struct FetchedMessage: Sendable {
    public let body: [UInt8]
    public let properties: AMQPProperties
    public let exchange: String
    public let routingKey: String
    public let redelivered: Bool
    /// Messages left in the queue after this one.
    public let remaining: Int
    let deliveryTag: UInt64
    let epoch: UInt64
}
