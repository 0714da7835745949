import AMQP
import DepotModel
import Foundation
import Logging
import Postgres
import ServiceLifecycle

/// Handles deliveries many at a time in one transaction, in queue order (the projector).
public protocol BatchHandler: Sendable {
    /// Applies the messages in order; throwing rolls back the whole batch.
    func handle(_ batch: [IncomingMessage], on connection: PostgresConnection) async throws
}

/// Consumes one queue in batches: everything that has arrived (up to `maxBatch`) is handled
/// in one transaction and acked after the commit. Order is kept: a batch that fails is tried
/// again message by message, a poison message goes to `depot.dead`, and a transient failure
/// returns every message still held to the queue (at its original place) and waits.
public final class BatchConsumer: Service, Sendable {
    public let queue: QueueSpec
    let handler: any BatchHandler
    let pool: PostgresPool
    let amqp: AMQPConnection
    let prefetch: UInt16
    let maxBatch: Int
    let logger: Logger

    public init(
        queue: QueueSpec, handler: any BatchHandler, pool: PostgresPool, amqp: AMQPConnection, prefetch: UInt16,
        maxBatch: Int,
        logger: Logger
    ) {
        self.queue = queue
        self.handler = handler
        self.pool = pool
        self.amqp = amqp
        self.prefetch = prefetch
        self.maxBatch = maxBatch
        self.logger = logger
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
                group.addTask { await self.process(from: waiting) }
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            consumer.stop()
        }
    }

    private func process(from waiting: DeliveryBuffer) async {
        var failures = 0
        while true {
            switch waiting.take(upTo: maxBatch) {
            case .finished: return
            case .empty: await waiting.arrived.wait()
            case .deliveries(let batch):
                if await handle(batch) {
                    failures = 0
                    continue
                }
                failures += 1
                // Return everything held, in order, and wait before taking it again.
                if case .deliveries(let held) = waiting.take(upTo: .max) {
                    for delivery in held { delivery.nack(requeue: true) }
                }
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 6)), 5_000)))
            }
        }
    }

    /// Returns false after a transient failure (the batch's unhandled deliveries are requeued).
    private func handle(_ deliveries: [Delivery]) async -> Bool {
        var messages: [(Delivery, IncomingMessage)] = []
        for delivery in deliveries {
            do {
                messages.append((delivery, try IncomingMessage(delivery)))
            } catch {
                await deadLetter(delivery, reason: error.description)
            }
        }
        do {
            try await pool.withTransaction { connection in
                try await handler.handle(messages.map(\.1), on: connection)
            }
            for (delivery, _) in messages { delivery.ack() }
            return true
        } catch  where messages.count > 1 {
            // Find the culprit: one by one, in order.
            for (index, (delivery, message)) in messages.enumerated() {
                do {
                    try await pool.withTransaction { connection in try await handler.handle([message], on: connection) }
                    delivery.ack()
                } catch let error as EnvelopeError {
                    await deadLetter(delivery, reason: error.description)
                } catch let error as PermanentFailure {
                    await deadLetter(delivery, reason: error.reason)
                } catch {
                    logger.warning(
                        "batch handling failed; returning messages to the queue",
                        metadata: [LogKey.error: "\(String(reflecting: error))"])
                    for (rest, _) in messages[index...] { rest.nack(requeue: true) }
                    return false
                }
            }
            return true
        } catch let error as EnvelopeError {
            await deadLetter(messages[0].0, reason: error.description)
            return true
        } catch let error as PermanentFailure {
            await deadLetter(messages[0].0, reason: error.reason)
            return true
        } catch {
            logger.warning(
                "batch handling failed; returning messages to the queue",
                metadata: [LogKey.error: "\(String(reflecting: error))"])
            for (delivery, _) in messages { delivery.nack(requeue: true) }
            return false
        }
    }

    private func deadLetter(_ delivery: Delivery, reason: String) async {
        await FailedMessageRouter(amqp: amqp, queue: queue.name).deadLetter(
            delivery, reason: reason, attempts: 1, logger: logger)
    }
}
