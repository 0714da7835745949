import AMQP
import Foundation
import Messaging

/// `depot dlq`: look at, re-drive and purge dead letters without losing or doubling any.
public struct DeadLetters: Sendable {
    /// Every Depot queue's dead-letter queue.
    public static let queues = [
        "depot.orders.dead", "depot.inventory.dead", "depot.payments.dead", "depot.projector.dead",
    ]

    public struct Letter: Sendable {
        public var reason: String
        public var attempts: Int
        public var originalExchange: String
        public var originalRoutingKey: String
        public var originalQueue: String
        public var deadLetteredAt: String?
        public var messageId: String?
        public var type: String?
        public var body: String

        init(_ message: FetchedMessage) {
            let headers = message.properties.headers
            reason = headers[MessageHeader.error]?.stringValue ?? "(no reason recorded)"
            attempts = Int(headers[MessageHeader.attempts]?.integerValue ?? 0)
            originalExchange = headers[MessageHeader.originalExchange]?.stringValue ?? message.exchange
            originalRoutingKey = headers[MessageHeader.originalRoutingKey]?.stringValue ?? message.routingKey
            originalQueue = headers[MessageHeader.originalQueue]?.stringValue ?? ""
            deadLetteredAt = headers[MessageHeader.deadLetteredAt]?.stringValue
            messageId = message.properties.messageId
            type = message.properties.type
            body = String(decoding: message.body, as: UTF8.self)
        }
    }

    public struct Summary: Sendable {
        public var queue: String
        public var count: Int
        public var oldest: String?
        /// Reason (up to its first colon-free part) → how many.
        public var reasons: [String: Int]
    }

    let amqp: AMQPConnection
    public init(amqp: AMQPConnection) { self.amqp = amqp }

    /// Reads up to `limit` messages and puts every one back, in order.
    public func peek(_ queue: String, limit: Int) async throws -> [Letter] {
        var held: [FetchedMessage] = []
        do {
            while held.count < limit, let message = try await amqp.get(queue: queue) { held.append(message) }
        } catch {
            for message in held { try? await amqp.settle(message, ack: false) }
            throw error
        }
        for message in held.reversed() { try await amqp.settle(message, ack: false) }
        return held.map(Letter.init)
    }

    public func summary(_ queue: String, inspect limit: Int = 1_000) async throws -> Summary {
        let count = try await amqp.inspectQueue(queue).messageCount
        let letters = count == 0 ? [] : try await peek(queue, limit: min(limit, count))
        var reasons: [String: Int] = [:]
        for letter in letters {
            let kind = String(letter.reason.prefix { $0 != ":" }.prefix(80))
            reasons[kind, default: 0] += 1
        }
        return Summary(queue: queue, count: count, oldest: letters.compactMap(\.deadLetteredAt).min(), reasons: reasons)
    }

    /// Sends messages back where they first went, one at a time: publish with a confirm (same
    /// message id, attempt count reset), then ack. Interrupted between the two, the message is
    /// both back in the dead-letter queue and delivered; the consumer's inbox drops the repeat.
    public func redrive(_ queue: String, limit: Int, progress: @Sendable (Int, Letter) -> Void = { _, _ in })
        async throws -> Int
    {
        var done = 0
        while done < limit, let message = try await amqp.get(queue: queue) {
            let letter = Letter(message)
            var properties = message.properties
            for header in [
                MessageHeader.attempts, MessageHeader.error, MessageHeader.deadLetteredAt, MessageHeader.originalQueue,
            ] {
                properties.headers[header] = nil
            }
            do {
                try await amqp.publish(
                    OutgoingMessage(body: message.body, properties: properties), exchange: letter.originalExchange,
                    routingKey: letter.originalRoutingKey, mandatory: true, timeout: .seconds(30))
            } catch {
                try? await amqp.settle(message, ack: false)
                throw error
            }
            try await amqp.settle(message, ack: true)
            done += 1
            progress(done, letter)
        }
        return done
    }

    public func purge(_ queue: String) async throws -> Int {
        try await amqp.purgeQueue(queue)
    }
}
