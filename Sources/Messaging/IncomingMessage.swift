import AMQP
import DepotModel
import Foundation

/// A delivery whose envelope header has been read: what a handler sees.
public struct IncomingMessage: Sendable {
    public let id: UUID
    public let type: MessageType
    public let version: Int
    public let body: [UInt8]
    public let queue: String
    public let exchange: String
    public let routingKey: String
    public let traceparent: String?
    /// Attempts already made before this one (0 on first delivery).
    public let previousAttempts: Int

    /// Reads the envelope header; throws the reason a poison body goes to `depot.dead`.
    public init(_ delivery: Delivery) throws(EnvelopeError) {
        let header = try EnvelopeCodec.readableHeader(delivery.body)
        self.init(
            id: header.id, type: header.type, version: header.version, body: delivery.body, queue: delivery.queue,
            exchange: delivery.exchange, routingKey: delivery.routingKey,
            traceparent: delivery.properties.headers[MessageHeader.traceparent]?.stringValue,
            previousAttempts: Int(delivery.properties.headers[MessageHeader.attempts]?.integerValue ?? 0))
    }

    public init(
        id: UUID, type: MessageType, version: Int, body: [UInt8], queue: String = "", exchange: String = "",
        routingKey: String = "", traceparent: String? = nil, previousAttempts: Int = 0
    ) {
        self.id = id
        self.type = type
        self.version = version
        self.body = body
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
        self.traceparent = traceparent
        self.previousAttempts = previousAttempts
    }

    /// The whole envelope with its typed data; throws `invalid_data` when the data does not fit.
    public func decode<Payload>(_ payload: Payload.Type) throws(EnvelopeError) -> Envelope<Payload> {
        try EnvelopeCodec.decode(body, as: payload)
    }
}
