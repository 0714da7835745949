import AMQP
import ArgumentParser
import DepotApp
import Foundation
import Logging
import Operations

struct DLQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "List, show, redrive or purge dead letters.",
        subcommands: [DLQList.self, DLQShow.self, DLQRedrive.self, DLQPurge.self])

    /// The broker for one dlq command, closed when it is done.
    static func withConnection<T>(_ options: ConnectionOptions, _ body: (AMQPConnection) async throws -> T) async throws
        -> T
    {
        try await Connections.withAMQP(try options.settings(), logger: Logger(label: "depot.dlq"), body)
    }

    static func requireQueue(_ queue: String, on amqp: AMQPConnection) async throws {
        guard (try? await amqp.inspectQueue(queue)) != nil else {
            FileHandle.standardError.write(
                Data("depot dlq: queue \(queue) does not exist; `depot dlq list` names the dead-letter queues\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct DLQList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Each dead-letter queue: count, oldest, reasons grouped.")
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "One JSON document.") var json = false

    func run() async throws {
        try await DLQ.withConnection(connection) { amqp in
            var summaries: [DeadLetters.Summary] = []
            for queue in DeadLetters.queues {
                guard (try? await amqp.inspectQueue(queue)) != nil else { continue }
                summaries.append(try await DeadLetters(amqp: amqp).summary(queue))
            }
            if json {
                let items = summaries.map { summary -> [String: Any] in
                    [
                        "queue": summary.queue, "count": summary.count, "oldest": summary.oldest ?? NSNull(),
                        "reasons": summary.reasons,
                    ]
                }
                print(
                    String(
                        decoding: try JSONSerialization.data(withJSONObject: ["queues": items], options: [.sortedKeys]),
                        as: UTF8.self))
                return
            }
            print(
                "QUEUE".padding(toLength: 24, withPad: " ", startingAt: 0) + "COUNT  OLDEST                    REASONS")
            for summary in summaries {
                let reasons = summary.reasons.sorted { $0.value > $1.value }.map { "\($0.value)× \($0.key)" }.joined(
                    separator: "; ")
                print(
                    summary.queue.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + String(summary.count).padding(toLength: 7, withPad: " ", startingAt: 0)
                        + (summary.oldest ?? "-").padding(toLength: 26, withPad: " ", startingAt: 0) + reasons)
            }
        }
    }
}

struct DLQShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Dead letters with their reasons and bodies; they stay in the queue.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A dead-letter queue, e.g. depot.orders.dead.") var queue: String
    @Option(help: "At most this many.") var limit = 20
    @Flag(help: "One JSON document.") var json = false

    func run() async throws {
        try await DLQ.withConnection(connection) { amqp in
            try await DLQ.requireQueue(queue, on: amqp)
            let letters = try await DeadLetters(amqp: amqp).peek(queue, limit: limit)
            if json {
                let items = letters.map { letter -> [String: Any] in
                    [
                        "reason": letter.reason, "attempts": letter.attempts,
                        "original_exchange": letter.originalExchange,
                        "original_routing_key": letter.originalRoutingKey, "original_queue": letter.originalQueue,
                        "dead_lettered_at": letter.deadLetteredAt ?? NSNull(),
                        "message_id": letter.messageId ?? NSNull(), "type": letter.type ?? NSNull(),
                        "body": letter.body,
                    ]
                }
                print(
                    String(
                        decoding: try JSONSerialization.data(
                            withJSONObject: ["queue": queue, "messages": items], options: [.sortedKeys]), as: UTF8.self)
                )
                return
            }
            for (index, letter) in letters.enumerated() {
                print(
                    "#\(index + 1) \(letter.type ?? "?") id \(letter.messageId ?? "?") — dead-lettered \(letter.deadLetteredAt ?? "?") after \(letter.attempts) attempt(s)"
                )
                print("   reason:   \(letter.reason)")
                print(
                    "   original: exchange '\(letter.originalExchange)', routing key '\(letter.originalRoutingKey)', queue '\(letter.originalQueue)'"
                )
                print("   body:     \(letter.body.prefix(2_000))")
            }
            print("\(letters.count) shown; they are still in \(queue)")
        }
    }
}

struct DLQRedrive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redrive",
        abstract: "Send dead letters back to their original exchange and routing key, one at a time, with confirms.",
        discussion:
            "Safe to interrupt and run again: a message is acked only after its copy is confirmed, and consumers' inboxes drop a repeat."
    )
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A dead-letter queue, e.g. depot.inventory.dead.") var queue: String
    @Option(help: "At most this many.") var limit = Int.max

    func run() async throws {
        try await DLQ.withConnection(connection) { amqp in
            try await DLQ.requireQueue(queue, on: amqp)
            let total = try await amqp.inspectQueue(queue).messageCount
            do {
                let done = try await DeadLetters(amqp: amqp).redrive(queue, limit: limit) { done, letter in
                    FileHandle.standardError.write(
                        Data(
                            "redriven \(done)/\(min(total, limit)): \(letter.type ?? "?") → '\(letter.originalExchange)' / '\(letter.originalRoutingKey)'\n"
                                .utf8))
                }
                print(
                    "redrove \(done) message(s) from \(queue); \(try await amqp.inspectQueue(queue).messageCount) left")
            } catch {
                FileHandle.standardError.write(
                    Data(
                        "depot dlq redrive: \(String(reflecting: error))\nthe message being moved stays in \(queue); run the command again.\n"
                            .utf8))
                throw ExitCode(1)
            }
        }
    }
}

struct DLQPurge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge", abstract: "Delete every message of a dead-letter queue (asks first).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "A dead-letter queue.") var queue: String
    @Flag(help: "Do not ask.") var yes = false

    func run() async throws {
        try await DLQ.withConnection(connection) { amqp in
            try await DLQ.requireQueue(queue, on: amqp)
            let count = try await amqp.inspectQueue(queue).messageCount
            if !yes {
                FileHandle.standardError.write(
                    Data("delete all \(count) message(s) of \(queue) for good? type the queue name to confirm: ".utf8))
                guard readLine()?.trimmingCharacters(in: .whitespaces) == queue else {
                    print("not purged")
                    throw ExitCode(1)
                }
            }
            print("purged \(try await DeadLetters(amqp: amqp).purge(queue)) message(s) from \(queue)")
        }
    }
}
