import AMQP
import DepotModel
import Foundation

/// The AMQP properties every Depot message carries (docs/interface.md §4).
public enum MessageProperties {
    public static func make(
        id: UUID, type: String, correlationId: String, causationId: UUID?, traceparent: String?,
        timestamp: Date = Date()
    ) -> AMQPProperties {
        var properties = AMQPProperties.persistentJSON(messageId: id.canonicalText, type: type)
        properties.correlationId = correlationId
        properties.timestamp = timestamp
        if let causationId { properties.headers[MessageHeader.causationId] = .string(causationId.canonicalText) }
        if let traceparent { properties.headers[MessageHeader.traceparent] = .string(traceparent) }
        return properties
    }
}

/// Publishes messages that do not come from a handler (the edge's commands, tests, tools),
/// with the contract's properties and a publisher confirm.
public struct MessagePublisher: Sendable {
    public let amqp: AMQPConnection

    public init(amqp: AMQPConnection) {
        self.amqp = amqp
    }

    /// True while the broker connection is up (a publish now can be confirmed).
    public var isConnected: Bool { amqp.isConnected }

    /// Returns once the broker has confirmed the message; throws on timeout or refusal.
    public func publish<Payload>(_ envelope: Envelope<Payload>, traceparent: String? = nil, timeout: Duration? = nil)
        async throws
    {
        let properties = MessageProperties.make(
            id: envelope.id, type: envelope.type.rawValue, correlationId: envelope.correlationId,
            causationId: envelope.causationId,
            traceparent: traceparent)
        try await amqp.publish(
            OutgoingMessage(body: try EnvelopeCodec.encode(envelope), properties: properties),
            exchange: envelope.type.exchange,
            routingKey: envelope.type.rawValue, timeout: timeout)
    }
}
