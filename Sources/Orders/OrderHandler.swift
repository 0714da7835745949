import DepotModel
import Foundation
import Logging
import Messaging
import Metrics
import Postgres

/// The orders service (schema `orders`): places orders and drives the saga.
///
/// Every step locks the order's row first, so two messages about one order are decided one
/// after the other, and the events of one order enter the outbox in the order they happened.
public struct OrderHandler: MessageHandler {
    public static let schema = "orders"
    /// From order.place handled to the final decision, by final status (made on first use, after
    /// the process bootstrapped its metrics).
    static let endToEnd = Dictionary(
        uniqueKeysWithValues: OrderStatus.allCases.filter(\.isFinal).map {
            ($0, Timer(label: "depot_order_end_to_end_seconds", dimensions: [("status", $0.rawValue)]))
        })
    public static let queue = QueueSpec(
        name: "depot.orders",
        handles: [.orderPlace, .orderCancel, .stockReserved, .stockRejected, .paymentSettled, .paymentDeclined])

    /// How long a reserved order waits for its payment before it is cancelled.
    public let paymentTimeout: Duration

    public init(paymentTimeout: Duration) {
        self.paymentTimeout = paymentTimeout
    }

    /// Locks every existing order a batch advances, in id order, before any message is handled:
    /// two batches that meet the same orders in different queue order would otherwise each hold
    /// one row and wait for the other's (a deadlock, and both batches handled again in halves).
    public func prepare(_ messages: [IncomingMessage], on connection: PostgresConnection) async throws {
        var orders: Set<String> = []
        for message in messages {
            let order: UUID
            switch message.type {
            case .orderCancel: order = try message.decode(CancelOrder.self).data.orderId
            case .stockReserved: order = try message.decode(StockReserved.self).data.orderId
            case .stockRejected: order = try message.decode(StockRejected.self).data.orderId
            case .paymentSettled: order = try message.decode(PaymentSettled.self).data.orderId
            case .paymentDeclined: order = try message.decode(PaymentDeclined.self).data.orderId
            default: continue
            }
            orders.insert(order.canonicalText)
        }
        guard orders.count > 1 else { return }
        // Travels with the first statement that follows; its rows are only locked, not read.
        connection.executeLater(
            """
            SELECT 1 FROM orders.orders
            WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text(\(try PostgresJSON(encoding: orders.sorted())))::uuid))
            ORDER BY id FOR UPDATE
            """)
    }

    public func handle(_ message: IncomingMessage, context: HandlerContext) async throws {
        switch message.type {
        case .orderPlace:
            try await place(message.decode(PlaceOrder.self).data, context)
        case .orderCancel:
            let cancel = try message.decode(CancelOrder.self).data
            try await advance(
                cancel.orderId, .cancelRequested(reason: cancel.reason ?? "cancelled by the customer"), context)
        case .stockReserved:
            let reserved = try message.decode(StockReserved.self).data
            try await advance(
                reserved.orderId, .stockReserved(lines: reserved.lines, totalCents: reserved.totalCents), context)
        case .stockRejected:
            let rejected = try message.decode(StockRejected.self).data
            try await advance(rejected.orderId, .stockRejected(reason: rejected.reason), context)
        case .paymentSettled:
            try await advance(message.decode(PaymentSettled.self).data.orderId, .paymentSettled, context)
        case .paymentDeclined:
            let declined = try message.decode(PaymentDeclined.self).data
            try await advance(declined.orderId, .paymentDeclined(reason: declined.reason), context)
        default:
            throw PermanentFailure("orders does not handle \(message.type.rawValue)")
        }
    }

    private func place(_ order: PlaceOrder, _ context: HandlerContext) async throws {
        let inserted = try await context.connection.execute(
            """
            INSERT INTO orders.orders (id, customer_id, status, lines, payment_token)
            VALUES (\(order.orderId), \(order.customerId), 'pending', \(try PostgresJSON(encoding: order.lines)), \(order.payment.token))
            ON CONFLICT (id) DO NOTHING
            """)
        guard inserted == 1 else { return }  // the same order placed again under a new message id
        try await context.emit(
            .orderPlaced, correlationId: order.orderId.canonicalText,
            OrderPlaced(orderId: order.orderId, customerId: order.customerId, lines: order.lines))
    }

    private func advance(_ orderId: UUID, _ input: OrderSaga.Input, _ context: HandlerContext) async throws {
        try await OrderSteps(connection: context.connection, paymentTimeout: paymentTimeout).advance(
            orderId, input, causationId: context.message.id
        ) { type, data in
            try await context.emit(type, correlationId: orderId.canonicalText, data)
        }
    }
}

/// Loads an order, asks the saga, and writes the decision: status, deadline, and the event.
struct OrderSteps {
    let connection: PostgresConnection
    let paymentTimeout: Duration

    func advance(
        _ orderId: UUID, _ input: OrderSaga.Input, causationId: UUID,
        emit: (MessageType, any Codable & Sendable) async throws -> Void
    ) async throws {
        let rows = try await connection.query(
            "SELECT status, payment_token, lines, total_cents, created_at FROM orders.orders WHERE id = \(orderId) FOR UPDATE"
        )
        guard let row = rows.first else {
            // A cancel can overtake its order on the queue (deliveries are handled concurrently):
            // try again later; after the last retry the message is dead-lettered for a person to see.
            throw OrderNotKnownYet(orderId: orderId)
        }
        guard let status = OrderStatus(rawValue: try row.decode(0)) else {
            throw PermanentFailure("order \(orderId.canonicalText) has an unknown status")
        }
        let decision = OrderSaga.decide(status, input)
        guard decision.status != status || decision.effect != nil else { return }
        if decision.status.isFinal {
            // From order.place handled to the final decision.
            let placed: Date = try row.decode(4)
            OrderHandler.endToEnd[decision.status]?.recordNanoseconds(Int64(Date().timeIntervalSince(placed) * 1e9))
        }

        var total: Int? = try row.decode(3, as: Int?.self)
        var pricedLines: [PricedLine]?
        if case .stockReserved(let lines, let totalCents) = input {
            pricedLines = lines
            total = totalCents
        }
        var reason: String?
        switch decision.effect {
        case .reject(let why), .cancel(let why): reason = why
        default: break
        }
        connection.executeLater(
            """
            UPDATE orders.orders SET status = \(decision.status.rawValue), total_cents = \(total),
                lines = coalesce(\(try pricedLines.map { try PostgresJSON(encoding: $0) }), lines),
                reason = coalesce(\(reason), reason), updated_at = now()
            WHERE id = \(orderId)
            """)
        switch decision.paymentDeadline {
        case true?:
            let seconds =
                Double(paymentTimeout.components.seconds) + Double(paymentTimeout.components.attoseconds) / 1e18
            connection.executeLater(
                """
                INSERT INTO orders.payment_deadlines (order_id, due_at, causation_id)
                VALUES (\(orderId), now() + make_interval(secs => \(seconds)), \(causationId)) ON CONFLICT DO NOTHING
                """)
        case false?:
            connection.executeLater("DELETE FROM orders.payment_deadlines WHERE order_id = \(orderId)")
        case nil:
            break
        }
        switch decision.effect {
        case .requestPayment(let amount)?:
            try await emit(
                .paymentRequested, PaymentRequested(orderId: orderId, amountCents: amount, token: try row.decode(1)))
        case .confirm?:
            let lines = try row.decode(2, as: PostgresJSON.self).decode([PricedLine].self)
            try await emit(.orderConfirmed, OrderConfirmed(orderId: orderId, lines: lines, totalCents: total ?? 0))
        case .reject(let why)?:
            try await emit(.orderRejected, OrderEnded(orderId: orderId, reason: why))
        case .cancel(let why)?:
            try await emit(.orderCancelled, OrderEnded(orderId: orderId, reason: why))
        case nil:
            break
        }
    }
}

/// A message about an order this service has not placed (yet).
struct OrderNotKnownYet: Error, CustomStringConvertible {
    var orderId: UUID
    var description: String { "order \(orderId.canonicalText) is not known (yet)" }
}
