import Foundation

/// The basic properties of a message (AMQP 0-9-1 `basic` content header).
public struct AMQPProperties: Sendable, Hashable {
    public enum DeliveryMode: UInt8, Sendable {
        case transient = 1
        case persistent = 2
    }

    public var contentType: String?
    public var contentEncoding: String?
    public var headers: FieldTable
    public var deliveryMode: DeliveryMode?
    public var priority: UInt8?
    public var correlationId: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a decimal string.
    public var expiration: String?
    public var messageId: String?
    /// AMQP timestamps have one-second resolution.
    public var timestamp: Date?
    public var type: String?
    public var userId: String?
    public var appId: String?

    public init(
        contentType: String? = nil, contentEncoding: String? = nil, headers: FieldTable = [:],
        deliveryMode: DeliveryMode? = nil, priority: UInt8? = nil, correlationId: String? = nil,
        replyTo: String? = nil, expiration: String? = nil, messageId: String? = nil, timestamp: Date? = nil,
        type: String? = nil, userId: String? = nil, appId: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.type = type
        self.userId = userId
        self.appId = appId
    }

    /// Persistent JSON, the properties of every Depot message.
    public static func persistentJSON(messageId: String? = nil, type: String? = nil) -> AMQPProperties {
        AMQPProperties(contentType: "application/json", deliveryMode: .persistent, messageId: messageId, type: type)
    }
}

/// A message to publish.
public struct OutgoingMessage: Sendable {
    public var body: [UInt8]
    public var properties: AMQPProperties

    public init(body: [UInt8], properties: AMQPProperties = AMQPProperties()) {
        self.body = body
        self.properties = properties
    }

    public init(_ text: String, properties: AMQPProperties = AMQPProperties()) {
        self.init(body: Array(text.utf8), properties: properties)
    }
}
