import AMQP
import DepotModel
import Foundation
import Messaging

/// `depot dlq` and the console's dead letters: look at, re-drive and purge dead letters without
/// losing or doubling any.
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
        public var correlationId: String?
        /// Every header of the dead letter, as text (`x-depot-*`, `traceparent`, `x-causation-id`, …).
        public var headers: [String: String]
        public var body: String

        public init(
            reason: String, attempts: Int, originalExchange: String, originalRoutingKey: String, originalQueue: String,
            deadLetteredAt: String? = nil, messageId: String? = nil, type: String? = nil, correlationId: String? = nil,
            headers: [String: String] = [:], body: String
        ) {
            self.reason = reason
            self.attempts = attempts
            self.originalExchange = originalExchange
            self.originalRoutingKey = originalRoutingKey
            self.originalQueue = originalQueue
            self.deadLetteredAt = deadLetteredAt
            self.messageId = messageId
            self.type = type
            self.correlationId = correlationId
            self.headers = headers
            self.body = body
        }

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
            correlationId = message.properties.correlationId
            self.headers = headers.mapValues(Self.text)
            body = String(decoding: message.body, as: UTF8.self)
        }

        /// The reason's kind, as `list` groups them: the text before its first colon.
        public var reasonKind: String { Self.kind(of: reason) }

        public static func kind(of reason: String) -> String { String(reason.prefix { $0 != ":" }.prefix(80)) }

        static func text(_ value: AMQPValue) -> String {
            if let text = value.stringValue { return text }
            if let integer = value.integerValue { return String(integer) }
            switch value {
            case .bool(let flag): return String(flag)
            case .float(let number): return String(number)
            case .double(let number): return String(number)
            case .timestamp(let date): return RFC3339.string(date)
            case .array(let items): return "[" + items.map(text).joined(separator: ", ") + "]"
            case .table(let table):
                return "{"
                    + table.sorted { $0.key < $1.key }.map { "\($0.key): \(text($0.value))" }
                    .joined(separator: ", ") + "}"
            default: return String(describing: value)
            }
        }
    }

    public struct Summary: Sendable {
        public var queue: String
        public var count: Int
        public var oldest: String?
        /// Reason (up to its first colon-free part) → how many.
        public var reasons: [String: Int]

        public init(queue: String, count: Int, oldest: String?, reasons: [String: Int]) {
            self.queue = queue
            self.count = count
            self.oldest = oldest
            self.reasons = reasons
        }
    }

    /// Which dead letters a redrive moves: all, one message id, or one reason kind.
    public enum Selection: Sendable, Hashable {
        case all
        case message(id: String)
        case reason(kind: String)

        func matches(_ letter: Letter) -> Bool {
            switch self {
            case .all: true
            case .message(let id): letter.messageId == id
            case .reason(let kind): letter.reasonKind == kind
            }
        }
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
        if let last = held.last { try await waitUntilReturned(to: queue, holding: held.count + last.remaining) }
        return held.map(Letter.init)
    }

    /// A nack gets no reply, and RabbitMQ answers a count before the returns queued ahead of it
    /// (its queues serve `stat` first), so a count right after could miss messages still on
    /// their way back. Waits, briefly, until the queue holds at least what it was left with;
    /// less than that for long means another reader holds some, and then it stops waiting.
    private func waitUntilReturned(to queue: String, holding expected: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(2)
        var pause = Duration.milliseconds(1)
        while try await amqp.inspectQueue(queue).messageCount < expected, ContinuousClock.now < deadline {
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(20))
        }
    }

    public func summary(_ queue: String, inspect limit: Int = 1_000) async throws -> Summary {
        let count = try await amqp.inspectQueue(queue).messageCount
        let letters = count == 0 ? [] : try await peek(queue, limit: min(limit, count))
        var reasons: [String: Int] = [:]
        for letter in letters { reasons[letter.reasonKind, default: 0] += 1 }
        return Summary(queue: queue, count: count, oldest: letters.compactMap(\.deadLetteredAt).min(), reasons: reasons)
    }

    /// Sends messages back where they first went, one at a time: publish with a confirm (same
    /// message id, attempt count reset), then ack. Interrupted between the two, the message is
    /// both back in the dead-letter queue and delivered; the consumer's inbox drops the repeat.
    public func redrive(_ queue: String, limit: Int, progress: @Sendable (Int, Letter) -> Void = { _, _ in })
        async throws -> Int
    {
        try await redrive(queue, selection: .all, limit: limit, progress: progress).moved
    }

    /// What a redrive did: messages moved, and messages it left in the queue (those it did not
    /// pick, plus those it did not read), counted by the redrive itself: the broker's own count
    /// can lag behind the messages it has just been given back.
    public struct RedriveOutcome: Sendable, Hashable {
        public var moved: Int
        public var left: Int

        public init(moved: Int, left: Int) {
            self.moved = moved
            self.left = left
        }
    }

    /// `redrive` of the letters `selection` picks, looking at no more than `scan` messages: the
    /// others are held unacked while the queue is read and then returned to it in order (the
    /// broker returns them too if the connection drops meanwhile), so nothing else moves.
    public func redrive(
        _ queue: String, selection: Selection, limit: Int = .max, scan: Int = 10_000,
        progress: @Sendable (Int, Letter) -> Void = { _, _ in }
    ) async throws -> RedriveOutcome {
        var done = 0
        var skipped: [FetchedMessage] = []
        var unread = 0
        /// What stays in the queue: the skipped messages once returned, and those never read.
        func left() -> Int { skipped.count + unread }
        func returnSkipped() async {
            for message in skipped.reversed() { try? await amqp.settle(message, ack: false) }
            if !skipped.isEmpty { try? await waitUntilReturned(to: queue, holding: left()) }
            skipped = []
        }
        do {
            var looked = 0
            while done < limit, looked < scan, let message = try await amqp.get(queue: queue) {
                looked += 1
                unread = message.remaining
                let letter = Letter(message)
                guard selection.matches(letter) else {
                    skipped.append(message)
                    continue
                }
                var properties = message.properties
                for header in [
                    MessageHeader.attempts, MessageHeader.error, MessageHeader.deadLetteredAt,
                    MessageHeader.originalQueue,
                ] {
                    properties.headers[header] = nil
                }
                do {
                    try await amqp.publish(
                        OutgoingMessage(body: message.body, properties: properties),
                        exchange: letter.originalExchange,
                        routingKey: letter.originalRoutingKey, mandatory: true, timeout: .seconds(30))
                } catch {
                    try? await amqp.settle(message, ack: false)
                    throw error
                }
                try await amqp.settle(message, ack: true)
                done += 1
                progress(done, letter)
                if Task.isCancelled { break }  // shutting down: stop between messages
            }
        } catch {
            await returnSkipped()
            throw error
        }
        let outcome = RedriveOutcome(moved: done, left: left())
        await returnSkipped()
        return outcome
    }

    public func purge(_ queue: String) async throws -> Int {
        try await amqp.purgeQueue(queue)
    }
}
