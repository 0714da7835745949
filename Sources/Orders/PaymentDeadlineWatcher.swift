import DepotModel
import Foundation
import Logging
import Messaging
import Postgres
import ServiceLifecycle

/// The saga's durable timer: cancels reserved orders whose payment did not answer in time.
///
/// Deadlines live in `orders.payment_deadlines`, written with the step that starts them, so
/// they survive any crash. Each replica looks a few times a second; the order's row lock
/// (taken before anything else, as the handlers do) makes two replicas or a late payment
/// answer harmless.
public final class PaymentDeadlineWatcher: Service, Sendable {
    let pool: PostgresPool
    let paymentTimeout: Duration
    let relayWake: WakeSignal?
    let interval: Duration
    let logger: Logger

    public init(
        pool: PostgresPool, paymentTimeout: Duration, relayWake: WakeSignal?, interval: Duration = .milliseconds(250),
        logger: Logger
    ) {
        self.pool = pool
        self.paymentTimeout = paymentTimeout
        self.relayWake = relayWake
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.interval)
                do {
                    if try await self.expireDue() > 0 { self.relayWake?.signal() }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("payment deadline check failed", metadata: [LogKey.error: "\(error)"])
                }
            }
        }
    }

    /// Cancels every order whose deadline has passed; returns how many deadlines it handled.
    @discardableResult
    public func expireDue() async throws -> Int {
        let due = try await pool.withConnection { connection in
            try await connection.query(
                "SELECT order_id FROM orders.payment_deadlines WHERE due_at <= now() ORDER BY due_at LIMIT 100"
            ).map { try $0.decode(0, as: UUID.self) }
        }
        for orderId in due {
            try await pool.withTransaction { connection in
                let steps = OrderSteps(connection: connection, paymentTimeout: paymentTimeout)
                // Lock the order first, then look again: the payment may have answered meanwhile.
                _ = try await connection.query("SELECT 1 FROM orders.orders WHERE id = \(orderId) FOR UPDATE")
                let rows = try await connection.query(
                    "DELETE FROM orders.payment_deadlines WHERE order_id = \(orderId) AND due_at <= now() RETURNING causation_id"
                )
                guard let causationId = try rows.first?.decode(0, as: UUID.self) else { return }
                let outbox = Outbox(schema: OrderHandler.schema)
                try await steps.advance(orderId, .paymentDeadlinePassed, causationId: causationId) { type, data in
                    try await outbox.append(
                        type, correlationId: orderId.canonicalText, causationId: causationId, data: data, on: connection
                    )
                }
                logger.info(
                    "payment timed out; order cancelled", metadata: [LogKey.orderId: "\(orderId.canonicalText)"])
            }
        }
        return due.count
    }
}
