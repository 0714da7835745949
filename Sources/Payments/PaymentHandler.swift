import DepotModel
import Foundation
import Logging
import Messaging
import Postgres

/// The payments service (schema `payments`): charges each order at most once.
///
/// `payments.charges` holds one row per order. The row is inserted (or locked) before the
/// provider is called, so a redelivered request waits for the first and then finds its answer,
/// and a cancellation that races a charge is decided after it: an order cancelled before its
/// charge is never charged, one cancelled after it is refunded.
public struct PaymentHandler: MessageHandler {
    public static let schema = "payments"
    public static let queue = QueueSpec(name: "depot.payments", handles: [.paymentRequested, .orderCancelled])

    let provider: any PaymentProvider

    public init(provider: any PaymentProvider) {
        self.provider = provider
    }

    /// A charge happens at the provider before the transaction commits: alone, so nothing but
    /// its own failure can roll back the record of it.
    public var handlesBatches: Bool { false }

    public func handle(_ message: IncomingMessage, context: HandlerContext) async throws {
        switch message.type {
        case .paymentRequested: try await charge(message.decode(PaymentRequested.self).data, context)
        case .orderCancelled: try await void(message.decode(OrderEnded.self).data.orderId, context)
        default: throw PermanentFailure("payments does not handle \(message.type.rawValue)")
        }
    }

    private func charge(_ request: PaymentRequested, _ context: HandlerContext) async throws {
        let connection = context.connection
        let correlation = request.orderId.canonicalText
        connection.executeLater(
            """
            INSERT INTO payments.charges (order_id, status, amount_cents) VALUES (\(request.orderId), 'requested', \(request.amountCents))
            ON CONFLICT (order_id) DO NOTHING
            """)
        let status: String = try await connection.query(
            "SELECT status FROM payments.charges WHERE order_id = \(request.orderId) FOR UPDATE"
        ).first!.decode(0)
        guard status == "requested" else { return }  // answered before, or the order was cancelled first

        // A transient failure throws here: the transaction rolls back and the message is retried later.
        let outcome = try await provider.charge(
            idempotencyKey: correlation, amountCents: request.amountCents, token: request.token)
        switch outcome {
        case .settled(let reference):
            connection.executeLater(
                "UPDATE payments.charges SET status = 'settled', reference = \(reference), updated_at = now() WHERE order_id = \(request.orderId)"
            )
            try await context.emit(
                .paymentSettled, correlationId: correlation,
                PaymentSettled(orderId: request.orderId, amountCents: request.amountCents, reference: reference))
        case .declined(let reason):
            connection.executeLater(
                "UPDATE payments.charges SET status = 'declined', reason = \(reason), updated_at = now() WHERE order_id = \(request.orderId)"
            )
            try await context.emit(
                .paymentDeclined, correlationId: correlation, PaymentDeclined(orderId: request.orderId, reason: reason))
        }
    }

    /// The order was cancelled: no charge may follow, and one already made is refunded.
    private func void(_ orderId: UUID, _ context: HandlerContext) async throws {
        let connection = context.connection
        let inserted = try await connection.execute(
            "INSERT INTO payments.charges (order_id, status) VALUES (\(orderId), 'void') ON CONFLICT (order_id) DO NOTHING"
        )
        guard inserted == 0 else { return }
        let row = try await connection.query(
            "SELECT status, amount_cents, reference FROM payments.charges WHERE order_id = \(orderId) FOR UPDATE"
        ).first!
        switch try row.decode(0, as: String.self) {
        case "requested":
            // Asked for but never answered (a retry is pending): it will find the order void.
            try await connection.execute(
                "UPDATE payments.charges SET status = 'void', updated_at = now() WHERE order_id = \(orderId)")
        case "settled":
            let reference: String = try row.decode(2)
            try await provider.refund(idempotencyKey: orderId.canonicalText)
            try await connection.execute(
                "UPDATE payments.charges SET status = 'refunded', updated_at = now() WHERE order_id = \(orderId)")
            try await context.emit(
                .paymentRefunded, correlationId: orderId.canonicalText,
                PaymentRefunded(orderId: orderId, amountCents: try row.decode(1), reference: reference))
        default:
            break  // declined, void or refunded already
        }
    }
}
