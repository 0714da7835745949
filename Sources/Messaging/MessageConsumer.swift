import AMQP
import DepotModel
import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import Tracing

/// Consumes one queue and runs each delivery through a handler in ONE transaction: inbox row
/// (a message id seen before is acked and skipped), the handler's own changes, its outbox
/// rows. Commit, then ack; a crash anywhere before the ack redelivers, and the inbox makes
/// that harmless.
///
/// A body that cannot be read goes to `depot.dead` at once with its reason; a handler's
/// `PermanentFailure` too. Any other error is retried after a growing delay (through the
/// queue's retry holding queues) and dead-lettered after the last one. Up to `concurrency`
/// deliveries are handled at once; a graceful shutdown stops consuming and finishes them.
public final class MessageConsumer: Service, Sendable {
    public let queue: QueueSpec
    let inboxSchema: String
    let outbox: Outbox
    let handler: any MessageHandler
    let pool: PostgresPool
    let amqp: AMQPConnection
    let prefetch: UInt16
    let concurrency: Int
    let relayWake: WakeSignal?
    let logger: Logger
    let metrics: ConsumerMetrics

    public init(
        queue: QueueSpec, schema: String, handler: any MessageHandler, pool: PostgresPool, amqp: AMQPConnection,
        prefetch: UInt16, concurrency: Int, relayWake: WakeSignal?, logger: Logger
    ) {
        self.queue = queue
        self.inboxSchema = schema
        self.outbox = Outbox(schema: schema)
        self.handler = handler
        self.pool = pool
        self.amqp = amqp
        self.prefetch = prefetch
        self.concurrency = max(1, concurrency)
        self.relayWake = relayWake
        self.logger = logger
        self.metrics = ConsumerMetrics(queue: queue.name)
    }

    public func run() async throws {
        let consumer = try await amqp.consume(queue: queue.name, prefetch: prefetch)
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for try await delivery in consumer {
                    if inFlight >= concurrency {
                        try await group.next()
                        inFlight -= 1
                    }
                    group.addTask { await self.process(delivery) }
                    inFlight += 1
                }
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            consumer.stop()
        }
    }

    enum Outcome {
        case handled(emitted: Bool)
        case duplicate
    }

    func process(_ delivery: Delivery) async {
        var logger = self.logger
        logger[metadataKey: LogKey.queue] = "\(queue.name)"
        logger[metadataKey: LogKey.messageId] = "\(delivery.properties.messageId ?? "-")"
        logger[metadataKey: LogKey.correlationId] = "\(delivery.properties.correlationId ?? "-")"
        let message: IncomingMessage
        do {
            message = try IncomingMessage(delivery)
        } catch {
            await deadLetter(delivery, reason: error.description, attempts: 0, logger: logger)
            return
        }
        logger[metadataKey: LogKey.messageType] = "\(message.type.rawValue)"
        if let causation = delivery.properties.headers[MessageHeader.causationId]?.stringValue {
            logger[metadataKey: LogKey.causationId] = "\(causation)"
        }
        let started = ContinuousClock.now
        // A span per handling, a child of the trace the message carries (W3C traceparent); the
        // process exports it if a tracer is bootstrapped, and propagation does not depend on it.
        var span = startSpan("handle \(message.type.rawValue)", ofKind: .consumer)
        span.attributes["messaging.destination"] = queue.name
        span.attributes["messaging.message.id"] = message.id.canonicalText
        if let traceparent = message.traceparent { span.attributes["traceparent"] = traceparent }
        defer {
            span.end()
            metrics.handling.record(duration: ContinuousClock.now - started)
        }
        do {
            let outcome: Outcome
            do {
                outcome = try await transaction(message, logger: logger)
            } catch is DatabaseUnavailableAtShutdown {
                // Not a failure of the message: another replica, or the next start, takes it.
                delivery.nack(requeue: true)
                return
            }
            delivery.ack()
            switch outcome {
            case .handled(let emitted):
                if emitted { relayWake?.signal() }
                metrics.count(.ok)
                logger.debug("handled")
            case .duplicate:
                metrics.count(.duplicate)
                logger.debug("duplicate message skipped")
            }
        } catch let error as EnvelopeError {
            await deadLetter(
                delivery, reason: error.description, attempts: message.previousAttempts + 1, logger: logger)
        } catch let error as PermanentFailure {
            await deadLetter(delivery, reason: error.reason, attempts: message.previousAttempts + 1, logger: logger)
        } catch {
            await retry(delivery, message: message, error: error, logger: logger)
        }
    }

    /// Tries again at once after a deadlock or serialization failure, this many times.
    static let conflictRetries = 3
    /// Waits between tries while the database is unavailable.
    static let outageBackoff = Backoff(initial: .milliseconds(250), maximum: .seconds(5))

    /// The delivery's transaction: inbox row, handler, outbox rows, COMMIT.
    ///
    /// A deadlock or serialization failure is tried again at once in a new transaction (with
    /// jitter, so the two sides do not meet again) before the message counts as failed; while
    /// the database is unavailable (down, restarting, out of connections) the delivery is held
    /// and tried again with backoff: an outage is not the message's fault and must not use up
    /// its retries or dead-letter it.
    func transaction(_ message: IncomingMessage, logger: Logger) async throws -> Outcome {
        var conflicts = 0
        var outageAttempts = 0
        while true {
            do {
                return try await pool.withTransaction { connection -> Outcome in
                    // Travels with the handler's first statement; a message seen before fails it
                    // with a unique violation, and the whole transaction rolls back.
                    connection.executeLater(
                        "INSERT INTO \(unescaped: inboxSchema).inbox (message_id) VALUES (\(message.id))")
                    let context = HandlerContext(
                        connection: connection, message: message, logger: logger, outbox: outbox)
                    try await handler.handle(message, context: context)
                    return .handled(emitted: context.emittedCount > 0)
                }
            } catch let error as PostgresError where error.code == .uniqueViolation && error.constraint == "inbox_pkey"
            {
                return .duplicate
            } catch let error as PostgresError
                where (error.code == .deadlockDetected || error.code == .serializationFailure)
                && conflicts < Self.conflictRetries
            {
                conflicts += 1
                let reason = error.code == .deadlockDetected ? "deadlock" : "serialization_failure"
                metrics.conflictRetries[reason]?.increment()
                logger.notice(
                    "transaction conflict; trying again at once",
                    metadata: [LogKey.error: "\(reason)", LogKey.attempts: "\(conflicts)"])
                try? await Task.sleep(for: .milliseconds(Int.random(in: 1...(10 * conflicts))))
            } catch let error as PostgresError where error.isUnavailable {
                if Task.isShuttingDownGracefully || Task.isCancelled { throw DatabaseUnavailableAtShutdown() }
                if outageAttempts == 0 || outageAttempts.isMultiple(of: 20) {
                    logger.warning(
                        "database unavailable; holding the message and trying again",
                        metadata: [LogKey.error: "\(error.kind): \(error.message.prefix(200))"])
                }
                metrics.databaseWaits.increment()
                try? await Task.sleep(for: Self.outageBackoff.delay(attempt: outageAttempts))
                outageAttempts += 1
            }
        }
    }

    struct DatabaseUnavailableAtShutdown: Error {}

    private func retry(_ delivery: Delivery, message: IncomingMessage, error: any Error, logger: Logger) async {
        let attempts = message.previousAttempts + 1
        let reason =
            (error as? PostgresError).map { "\($0.code?.raw ?? "-"): \($0.message)" } ?? String(reflecting: error)
        guard attempts <= queue.retryDelays.count else {
            await deadLetter(
                delivery, reason: "gave up after \(attempts) attempts: \(reason)", attempts: attempts, logger: logger)
            return
        }
        let delay = queue.retryDelays[attempts - 1]
        metrics.count(.retried)
        logger.warning(
            "handling failed; retrying later",
            metadata: [LogKey.error: "\(reason)", LogKey.attempts: "\(attempts)", "retry_in": "\(delay)"])
        await FailedMessageRouter(amqp: amqp, queue: queue.name).retry(
            delivery, through: queue.retryQueue(after: delay), reason: reason, attempts: attempts, logger: logger)
    }

    private func deadLetter(_ delivery: Delivery, reason: String, attempts: Int, logger: Logger) async {
        metrics.count(.deadLettered)
        await FailedMessageRouter(amqp: amqp, queue: queue.name).deadLetter(
            delivery, reason: reason, attempts: attempts, logger: logger)
    }
}
