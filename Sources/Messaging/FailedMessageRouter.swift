import AMQP
import DepotModel
import Foundation
import Logging

/// Sends a message its consumer could not handle to a retry holding queue or to `depot.dead`,
/// with headers saying why, where it came from and how often it was tried.
struct FailedMessageRouter {
    let amqp: AMQPConnection
    /// The queue whose consumer gives up on the message.
    let queue: String

    func retry(_ delivery: Delivery, through retryQueue: String, reason: String, attempts: Int, logger: Logger) async {
        let properties = stamped(delivery, reason: reason, attempts: attempts)
        await forward(delivery, exchange: "", routingKey: retryQueue, properties: properties, logger: logger)
    }

    func deadLetter(_ delivery: Delivery, reason: String, attempts: Int, logger: Logger) async {
        logger.error(
            "message dead-lettered",
            metadata: [LogKey.error: "\(reason)", LogKey.attempts: "\(attempts)", LogKey.queue: "\(queue)"])
        var properties = stamped(delivery, reason: reason, attempts: attempts)
        properties.headers[MessageHeader.deadLetteredAt] = .string(Date().formatted(.iso8601))
        // Routed by the queue name: each queue's dead letters collect in `<queue>.dead`.
        await forward(delivery, exchange: Exchanges.dead, routingKey: queue, properties: properties, logger: logger)
    }

    private func stamped(_ delivery: Delivery, reason: String, attempts: Int) -> AMQPProperties {
        var properties = delivery.properties
        properties.headers[MessageHeader.error] = .string(String(reason.prefix(1000)))
        properties.headers[MessageHeader.attempts] = .int64(Int64(attempts))
        // Keep the first origin: a retried message comes back through the default exchange.
        if properties.headers[MessageHeader.originalExchange] == nil {
            properties.headers[MessageHeader.originalExchange] = .string(delivery.exchange)
            properties.headers[MessageHeader.originalRoutingKey] = .string(delivery.routingKey)
        }
        properties.headers[MessageHeader.originalQueue] = .string(queue)
        return properties
    }

    /// Publishes a copy with a confirm, then acks the original; if the broker does not take the
    /// copy, the original goes back to the queue instead, so nothing is lost.
    private func forward(
        _ delivery: Delivery, exchange: String, routingKey: String, properties: AMQPProperties, logger: Logger
    ) async {
        do {
            try await amqp.publish(
                OutgoingMessage(body: delivery.body, properties: properties), exchange: exchange,
                routingKey: routingKey,
                mandatory: true, timeout: .seconds(10))
            delivery.ack()
        } catch {
            logger.error(
                "could not forward a failed message; returning it to the queue",
                metadata: [LogKey.error: "\(String(reflecting: error))"])
            try? await Task.sleep(for: .seconds(1))
            delivery.nack(requeue: true)
        }
    }
}
