/// Header names Depot puts on messages (docs/interface.md §4).
public enum MessageHeader {
    /// The id of the message that caused this one.
    public static let causationId = "x-causation-id"
    /// W3C trace context, carried from the HTTP request through every command and event.
    public static let traceparent = "traceparent"
    /// How many times handling has been tried (on retried and dead-lettered messages).
    public static let attempts = "x-depot-attempts"
    /// Why the message was dead-lettered or last retried.
    public static let error = "x-depot-error"
    /// Where the message first went, so a redrive can send it there again.
    public static let originalExchange = "x-depot-original-exchange"
    public static let originalRoutingKey = "x-depot-original-routing-key"
    /// The queue whose consumer gave up on it.
    public static let originalQueue = "x-depot-original-queue"
    /// When it was dead-lettered (RFC 3339).
    public static let deadLetteredAt = "x-depot-dead-lettered-at"
}

/// Metadata keys for log lines, one spelling everywhere (as the AMQP properties spell them).
public enum LogKey {
    public static let correlationId = "correlation_id"
    public static let causationId = "causation_id"
    public static let messageId = "message_id"
    public static let messageType = "message_type"
    public static let queue = "queue"
    public static let routingKey = "routing_key"
    public static let orderId = "order_id"
    public static let sku = "sku"
    public static let attempts = "attempts"
    public static let error = "error"
}
