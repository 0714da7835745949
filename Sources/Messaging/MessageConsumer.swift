import AMQP
import DepotModel
import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import Tracing

/// Consumes one queue and handles what is waiting in batches: ONE transaction per batch with
/// an inbox row per message (a message id seen before is acked and skipped), each handler's
/// own changes, their outbox rows. Commit, then ack; a crash anywhere before the ack
/// redelivers, and the inbox makes that harmless.
///
/// A batch is whatever has arrived when a handling slot is free, up to `maxBatch`: an idle
/// queue never waits to fill one, a busy one shares a commit (and its disk sync) among many
/// messages. A batch that fails is handled again in halves, down to single messages, so one
/// poison or failing message is retried or dead-lettered alone and the others commit; a
/// deadlock retries it smaller the same way.
///
/// A body that cannot be read goes to `depot.dead` at once with its reason; a handler's
/// `PermanentFailure` too. Any other error is retried after a growing delay (through the
/// queue's retry holding queues) and dead-lettered after the last one. Up to `concurrency`
/// batches are handled at once; a graceful shutdown stops consuming and finishes them.
public final class MessageConsumer: Service, Sendable {
    public let queue: QueueSpec
    let inboxSchema: String
    let outbox: Outbox
    let handler: any MessageHandler
    let pool: PostgresPool
    let amqp: AMQPConnection
    let prefetch: UInt16
    let concurrency: Int
    let maxBatch: Int
    let relayWake: WakeSignal?
    let logger: Logger
    let metrics: ConsumerMetrics

    /// Messages per transaction at most: past this a batch's locks are held longer than its
    /// shared commit saves.
    public static let defaultMaxBatch = 32

    public init(
        queue: QueueSpec, schema: String, handler: any MessageHandler, pool: PostgresPool, amqp: AMQPConnection,
        prefetch: UInt16, concurrency: Int, maxBatch: Int = MessageConsumer.defaultMaxBatch, relayWake: WakeSignal?,
        logger: Logger
    ) {
        self.queue = queue
        self.inboxSchema = schema
        self.outbox = Outbox(schema: schema)
        self.handler = handler
        self.pool = pool
        self.amqp = amqp
        self.prefetch = prefetch
        self.concurrency = max(1, concurrency)
        self.maxBatch = handler.handlesBatches ? max(1, maxBatch) : 1
        self.relayWake = relayWake
        self.logger = logger
        self.metrics = ConsumerMetrics(queue: queue.name)
    }

    public func run() async throws {
        let consumer = try await amqp.consume(queue: queue.name, prefetch: prefetch)
        let waiting = DeliveryBuffer()
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { waiting.close() }
                    for try await delivery in consumer { waiting.append(delivery) }
                }
                group.addTask { await self.dispatch(from: waiting) }
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            consumer.stop()
        }
    }

    /// Starts a batch whenever a slot is free and something waits; ends when the consumer has
    /// ended and every batch is settled.
    private func dispatch(from waiting: DeliveryBuffer) async {
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            while true {
                if inFlight >= concurrency {
                    await group.next()
                    inFlight -= 1
                    continue
                }
                switch waiting.take(upTo: maxBatch) {
                case .deliveries(let batch):
                    group.addTask { await self.handle(batch) }
                    inFlight += 1
                case .empty:
                    await waiting.arrived.wait()
                case .finished:
                    await group.waitForAll()
                    return
                }
            }
        }
    }

    enum Outcome {
        case handled(emitted: Bool)
        case duplicate
    }

    func handle(_ deliveries: [Delivery]) async {
        metrics.batchSize.record(deliveries.count)
        var readable: [Received] = []
        for delivery in deliveries {
            let logger = logger(for: delivery)
            do {
                readable.append(Received(delivery: delivery, message: try IncomingMessage(delivery), logger: logger))
            } catch {
                await deadLetter(delivery, reason: error.description, attempts: 0, logger: logger)
            }
        }
        await handleTogether(readable[...])
    }

    /// A readable delivery and its log context.
    struct Received: Sendable {
        let delivery: Delivery
        let message: IncomingMessage
        let logger: Logger
    }

    private func logger(for delivery: Delivery) -> Logger {
        var logger = self.logger
        logger[metadataKey: LogKey.queue] = "\(queue.name)"
        logger[metadataKey: LogKey.messageId] = "\(delivery.properties.messageId ?? "-")"
        logger[metadataKey: LogKey.correlationId] = "\(delivery.properties.correlationId ?? "-")"
        if let causation = delivery.properties.headers[MessageHeader.causationId]?.stringValue {
            logger[metadataKey: LogKey.causationId] = "\(causation)"
        }
        return logger
    }

    /// One transaction for the batch; when it fails, each half again, down to single messages.
    private func handleTogether(_ batch: ArraySlice<Received>) async {
        guard batch.count > 1 else {
            if let only = batch.first { await process(only) }
            return
        }
        let started = ContinuousClock.now
        let spans = batch.map { startSpan(for: $0.message, batchSize: batch.count) }
        defer {
            for span in spans { span.end() }
            let elapsed = ContinuousClock.now - started
            for _ in batch { metrics.handling.record(duration: elapsed) }
        }
        let outcomes: [Outcome]
        do {
            outcomes = try await batchTransaction(batch)
        } catch is DatabaseUnavailableAtShutdown {
            for received in batch { received.delivery.nack(requeue: true) }
            return
        } catch is CancellationError {
            // The consumer is being torn down: not the messages' fault, so no retry is used up.
            for received in batch { received.delivery.nack(requeue: true) }
            return
        } catch {
            metrics.batchSplits.increment()
            batch.first!.logger.info(
                "a batch of \(batch.count) failed; handling it again in halves",
                metadata: [LogKey.error: "\(Self.reason(error))"])
            let middle = batch.startIndex + batch.count / 2
            await handleTogether(batch[..<middle])
            await handleTogether(batch[middle...])
            return
        }
        var emitted = false
        for (received, outcome) in zip(batch, outcomes) {
            received.delivery.ack()
            settled(outcome, logger: received.logger, emitted: &emitted)
        }
        if emitted { relayWake?.signal() }
    }

    /// The batch's transaction: the inbox rows of all (duplicates found in one statement), the
    /// handler's locks for all, each message in queue order, COMMIT. Throws on the first failure.
    func batchTransaction(_ batch: ArraySlice<Received>) async throws -> [Outcome] {
        try await heldThroughOutages(logger: batch.first!.logger) {
            try await pool.withTransaction { connection -> [Outcome] in
                // In id order: two batches holding the same ids (after a redelivery) lock them alike.
                let ids = try PostgresJSON(encoding: batch.map(\.message.id.canonicalText))
                var fresh = Set(
                    try await connection.query(
                        """
                        INSERT INTO \(unescaped: inboxSchema).inbox (message_id)
                        SELECT DISTINCT id::uuid FROM jsonb_array_elements_text(\(ids)) id ORDER BY 1
                        ON CONFLICT (message_id) DO NOTHING RETURNING message_id
                        """
                    ).map { try $0.decode(0, as: UUID.self) })
                try await handler.prepare(batch.map(\.message).filter { fresh.contains($0.id) }, on: connection)
                var outcomes: [Outcome] = []
                outcomes.reserveCapacity(batch.count)
                for received in batch {
                    // A message seen before, or twice in this batch: handled once.
                    guard fresh.remove(received.message.id) != nil else {
                        outcomes.append(.duplicate)
                        continue
                    }
                    let context = HandlerContext(
                        connection: connection, message: received.message, logger: received.logger, outbox: outbox)
                    try await handler.handle(received.message, context: context)
                    outcomes.append(.handled(emitted: context.emittedCount > 0))
                }
                return outcomes
            }
        }
    }

    private func settled(_ outcome: Outcome, logger: Logger, emitted: inout Bool) {
        switch outcome {
        case .handled(let emittedAny):
            emitted = emitted || emittedAny
            metrics.count(.ok)
            logger.debug("handled")
        case .duplicate:
            metrics.count(.duplicate)
            logger.debug("duplicate message skipped")
        }
    }

    // A span per handling, a child of the trace the message carries (W3C traceparent); the
    // process exports it if a tracer is bootstrapped, and propagation does not depend on it.
    private func startSpan(for message: IncomingMessage, batchSize: Int) -> any Span {
        let span = Tracing.startSpan("handle \(message.type.rawValue)", ofKind: .consumer)
        span.attributes["messaging.destination"] = queue.name
        span.attributes["messaging.message.id"] = message.id.canonicalText
        span.attributes["messaging.batch.message_count"] = batchSize
        if let traceparent = message.traceparent { span.attributes["traceparent"] = traceparent }
        return span
    }

    /// A message alone: its own transaction, conflicts tried again, failures retried later or
    /// dead-lettered.
    func process(_ received: Received) async {
        let (delivery, message) = (received.delivery, received.message)
        var logger = received.logger
        logger[metadataKey: LogKey.messageType] = "\(message.type.rawValue)"
        let started = ContinuousClock.now
        let span = startSpan(for: message, batchSize: 1)
        defer {
            span.end()
            metrics.handling.record(duration: ContinuousClock.now - started)
        }
        do {
            let outcome: Outcome
            do {
                outcome = try await transaction(message, logger: logger)
            } catch is DatabaseUnavailableAtShutdown, is CancellationError {
                // Not a failure of the message: another replica, or the next start, takes it.
                delivery.nack(requeue: true)
                return
            }
            delivery.ack()
            var emitted = false
            settled(outcome, logger: logger, emitted: &emitted)
            if emitted { relayWake?.signal() }
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
        try await heldThroughOutages(logger: logger) {
            var conflicts = 0
            while true {
                do {
                    return try await pool.withTransaction { connection -> Outcome in
                        // Travels with the handler's first statement; a message seen before fails it
                        // with a unique violation, and the whole transaction rolls back.
                        connection.executeLater(
                            "INSERT INTO \(unescaped: inboxSchema).inbox (message_id) VALUES (\(message.id))")
                        try await handler.prepare([message], on: connection)
                        let context = HandlerContext(
                            connection: connection, message: message, logger: logger, outbox: outbox)
                        try await handler.handle(message, context: context)
                        return .handled(emitted: context.emittedCount > 0)
                    }
                } catch let error as PostgresError
                    where error.code == .uniqueViolation && error.constraint == "inbox_pkey"
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
                }
            }
        }
    }

    /// Runs `body` until the database answers: while it is unavailable (down, restarting, out
    /// of connections) the messages are held and tried again with backoff, because an outage is
    /// not their fault and must not use up their retries or dead-letter them.
    private func heldThroughOutages<T>(logger: Logger, _ body: () async throws -> T) async throws -> T {
        var outageAttempts = 0
        while true {
            do {
                return try await body()
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

    static func reason(_ error: any Error) -> String {
        (error as? PostgresError).map { "\($0.code?.raw ?? "-"): \($0.message)" } ?? String(reflecting: error)
    }

    struct DatabaseUnavailableAtShutdown: Error {}

    private func retry(_ delivery: Delivery, message: IncomingMessage, error: any Error, logger: Logger) async {
        let attempts = message.previousAttempts + 1
        let reason = Self.reason(error)
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
