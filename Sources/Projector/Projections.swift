import DepotModel
import Foundation
import Postgres

/// The read models, kept as a pure function of the event log: every value comes from the
/// events (times are the events' `occurred_at`), so applying the log again in order gives the
/// same rows. `schema` is where the tables are: `projections` live, another one for a rebuild.
public struct Projections: Sendable {
    public static let names = ["orders", "products"]

    public let schema: String
    /// The projections to maintain (a rebuild of one leaves the others alone).
    public let included: Set<String>

    public init(schema: String = "projections", only included: Set<String> = Set(Projections.names)) {
        self.schema = schema
        self.included = included
    }

    /// Applies one event to every projection it concerns. The statements are deferred: they
    /// travel together with the transaction's next statement or its COMMIT.
    public func apply(_ event: StoredEvent, on connection: PostgresConnection) async throws {
        if included.contains("orders") { try await applyToOrders(event, on: connection) }
        if included.contains("products") { try await applyToProducts(event, on: connection) }
    }

    /// Records how far the projections have read.
    public func checkpoint(_ position: Int64, on connection: PostgresConnection) async throws {
        connection.executeLater(
            """
            INSERT INTO \(unescaped: schema).checkpoints (projection, position)
            SELECT name, \(position) FROM unnest(ARRAY['orders', 'products']) AS name
            ON CONFLICT (projection) DO UPDATE SET position = excluded.position
            """)
    }

    // MARK: - Orders

    private func applyToOrders(_ event: StoredEvent, on connection: PostgresConnection) async throws {
        let s = schema
        let at = event.occurredAt
        let position = event.position
        switch event.type {
        case .orderPlaced:
            let placed = try event.decode(OrderPlaced.self).data
            connection.executeLater(
                """
                INSERT INTO \(unescaped: s).orders
                    (id, customer_id, status, lines, payment_status, created_at, updated_at, version, position)
                VALUES (\(placed.orderId), \(placed.customerId), 'pending', \(try PostgresJSON(encoding: placed.lines)), 'none',
                        \(at), \(at), 1, \(position))
                ON CONFLICT (id) DO NOTHING
                """)
        case .stockReserved:
            let reserved = try event.decode(StockReserved.self).data
            try await updateOrder(
                reserved.orderId,
                // A reservation can land after the customer's cancel: the order stays cancelled.
                set: "status = CASE WHEN status = 'pending' THEN 'reserved' ELSE status END, lines = \(try PostgresJSON(encoding: reserved.lines)), total_cents = \(reserved.totalCents)",
                event, on: connection)
        case .paymentRequested:
            try await updateOrder(try event.decode(PaymentRequested.self).data.orderId, set: "payment_status = 'pending'", event, on: connection)
        case .paymentSettled:
            let settled = try event.decode(PaymentSettled.self).data
            try await updateOrder(
                settled.orderId, set: "payment_status = 'settled', payment_reference = \(settled.reference)", event, on: connection)
        case .paymentDeclined:
            try await updateOrder(try event.decode(PaymentDeclined.self).data.orderId, set: "payment_status = 'declined'", event, on: connection)
        case .orderConfirmed:
            try await updateOrder(try event.decode(OrderConfirmed.self).data.orderId, set: "status = 'confirmed'", event, on: connection)
        case .orderRejected:
            let ended = try event.decode(OrderEnded.self).data
            try await updateOrder(ended.orderId, set: "status = 'rejected', reason = \(ended.reason)", event, on: connection)
        case .orderCancelled:
            let ended = try event.decode(OrderEnded.self).data
            try await updateOrder(ended.orderId, set: "status = 'cancelled', reason = \(ended.reason)", event, on: connection)
        case .stockRejected, .stockReleased, .paymentRefunded:
            // In the history only.
            guard let orderId = UUID(uuidString: event.correlationId) else { return }
            try await updateOrder(orderId, set: "reason = reason", event, on: connection)
        default:
            return
        }
    }

    /// Applies `set` to an order's row, counts the event in its version, and adds it to the history.
    private func updateOrder(_ orderId: UUID, set: PostgresQuery, _ event: StoredEvent, on connection: PostgresConnection) async throws {
        update("orders", keyColumn: "id", key: orderId, set: set, event, on: connection)
        connection.executeLater(
            """
            INSERT INTO \(unescaped: schema).order_history (order_id, position, type, occurred_at)
            VALUES (\(orderId), \(event.position), \(event.type.rawValue), \(event.occurredAt)) ON CONFLICT DO NOTHING
            """)
    }

    /// Applies `set` to one row of a projection table and stamps it with the event.
    private func update(
        _ table: String, keyColumn: String, key: some PostgresEncodable, set: PostgresQuery, _ event: StoredEvent,
        on connection: PostgresConnection
    ) {
        var update: PostgresQuery = "UPDATE \(unescaped: schema).\(unescaped: table) SET "
        update.append(set)
        update.append(
            ", version = version + 1, updated_at = \(event.occurredAt), position = \(event.position) WHERE \(unescaped: keyColumn) = \(key)")
        connection.executeLater(update)
    }

    // MARK: - Products

    private func applyToProducts(_ event: StoredEvent, on connection: PostgresConnection) async throws {
        let s = schema
        let at = event.occurredAt
        let position = event.position
        switch event.type {
        case .productCreated:
            let created = try event.decode(ProductCreated.self).data
            connection.executeLater(
                """
                INSERT INTO \(unescaped: s).products
                    (sku, name, price_cents, stock_available, stock_reserved, stock_sold, discontinued, version, updated_at, position)
                VALUES (\(created.sku), \(created.name), \(created.priceCents), \(created.stock), 0, 0, false, 1, \(at), \(position))
                ON CONFLICT (sku) DO NOTHING
                """)
        case .productUpdated:
            let updated = try event.decode(ProductUpdated.self).data
            try await updateProduct(updated.sku, set: "name = \(updated.name), price_cents = \(updated.priceCents)", event, on: connection)
        case .productDiscontinued:
            try await updateProduct(try event.decode(ProductDiscontinued.self).data.sku, set: "discontinued = true", event, on: connection)
        case .stockAdjusted:
            let adjusted = try event.decode(StockAdjusted.self).data
            try await updateProduct(adjusted.sku, set: "stock_available = stock_available + \(adjusted.delta)", event, on: connection)
        case .stockReserved:
            let lines = try event.decode(StockReserved.self).data.lines.map { OrderLine(sku: $0.sku, quantity: $0.quantity) }
            try await moveStock(lines, set: "stock_available = p.stock_available - l.quantity, stock_reserved = p.stock_reserved + l.quantity", event, on: connection)
        case .stockReleased:
            let lines = try event.decode(StockReleased.self).data.lines
            try await moveStock(lines, set: "stock_available = p.stock_available + l.quantity, stock_reserved = p.stock_reserved - l.quantity", event, on: connection)
        case .orderConfirmed:
            let lines = try event.decode(OrderConfirmed.self).data.lines.map { OrderLine(sku: $0.sku, quantity: $0.quantity) }
            try await moveStock(lines, set: "stock_reserved = p.stock_reserved - l.quantity, stock_sold = p.stock_sold + l.quantity", event, on: connection)
        default:
            return
        }
    }

    private func updateProduct(_ sku: String, set: PostgresQuery, _ event: StoredEvent, on connection: PostgresConnection) async throws {
        update("products", keyColumn: "sku", key: sku, set: set, event, on: connection)
    }

    private func moveStock(_ lines: [OrderLine], set: String, _ event: StoredEvent, on connection: PostgresConnection) async throws {
        connection.executeLater(
            """
            UPDATE \(unescaped: schema).products p SET \(unescaped: set), version = p.version + 1,
                updated_at = \(event.occurredAt), position = \(event.position)
            FROM (SELECT x->>'sku' AS sku, sum((x->>'quantity')::bigint) AS quantity
                  FROM jsonb_array_elements(\(try PostgresJSON(encoding: lines))) x GROUP BY 1) l
            WHERE p.sku = l.sku
            """)
    }
}
