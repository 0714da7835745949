import AMQP
import DepotModel
import Foundation
import Messaging
import Postgres
import Testing

/// What a test does to an isolated Depot: send commands the way the edge will, and read the
/// projections, the services' own tables and the event log.
struct SagaClient {
    let depot: IsolatedDepot
    let amqp: AMQPConnection
    let publisher: MessagePublisher
    let pool: PostgresPool

    init(_ depot: IsolatedDepot) async throws {
        self.depot = depot
        self.amqp = try await depot.connect()
        self.publisher = MessagePublisher(amqp: amqp)
        self.pool = try depot.pool(maxConnections: 4)
    }

    func close() async {
        await amqp.close()
        await pool.shutdown()
    }

    // MARK: Commands

    @discardableResult
    func send<Payload: Codable & Sendable>(_ type: MessageType, correlationId: String, _ data: Payload, id: UUID = UUID()) async throws -> UUID {
        try await publisher.publish(
            Envelope(id: id, type: type, correlationId: correlationId, causationId: nil, data: data), timeout: .seconds(10))
        return id
    }

    func createProduct(_ sku: String, stock: Int, priceCents: Int = 1_000) async throws {
        try await send(.productCreate, correlationId: sku, CreateProduct(sku: sku, name: "Product \(sku)", priceCents: priceCents, stock: stock))
    }

    /// Creates products and waits until inventory has them all.
    func createProducts(_ stock: [String: Int], priceCents: Int = 1_000) async throws {
        for (sku, count) in stock { try await createProduct(sku, stock: count, priceCents: priceCents) }
        let created = try await eventually(timeout: .seconds(20)) {
            try await pool.withConnection { connection in
                try await connection.query("SELECT count(*) FROM inventory.products").first!.decode(0, as: Int.self) >= stock.count
            }
        }
        #expect(created, "inventory did not create the products")
    }

    @discardableResult
    func placeOrder(_ lines: [String: Int], token: String = "tok_ok", orderId: UUID = UUID(), customer: String = "customer-1") async throws -> UUID {
        let order = PlaceOrder(
            orderId: orderId, customerId: customer, lines: lines.sorted { $0.key < $1.key }.map { OrderLine(sku: $0.key, quantity: $0.value) },
            payment: .init(token: token))
        try await send(.orderPlace, correlationId: orderId.uuidString.lowercased(), order)
        return orderId
    }

    func cancel(_ orderId: UUID) async throws {
        try await send(.orderCancel, correlationId: orderId.uuidString.lowercased(), CancelOrder(orderId: orderId))
    }

    // MARK: Reading

    /// The order's status in the projection (nil until the projector has seen it).
    func projectedStatus(_ orderId: UUID) async throws -> String? {
        try await pool.withConnection { connection in
            try await connection.query("SELECT status FROM projections.orders WHERE id = \(orderId)").first?.decode(0, as: String.self)
        }
    }

    /// Waits for the projection to show the order in a final status and returns it.
    func finalStatus(_ orderId: UUID, timeout: Duration = .seconds(30)) async throws -> String? {
        var status: String?
        _ = try await eventually(timeout: timeout) {
            status = try await projectedStatus(orderId)
            return status.map { ["confirmed", "rejected", "cancelled"].contains($0) } ?? false
        }
        return status
    }

    struct Stock: Equatable, CustomStringConvertible {
        var available: Int
        var reserved: Int
        var sold: Int
        var description: String { "available \(available), reserved \(reserved), sold \(sold)" }
    }

    /// Inventory's own numbers for a product.
    func stock(_ sku: String) async throws -> Stock {
        try await pool.withConnection { connection in
            let row = try await connection.query("SELECT available, reserved, sold FROM inventory.products WHERE sku = \(sku)").first!
            return Stock(available: try row.decode(0), reserved: try row.decode(1), sold: try row.decode(2))
        }
    }

    /// The projection's numbers for a product.
    func projectedStock(_ sku: String) async throws -> Stock? {
        try await pool.withConnection { connection in
            guard let row = try await connection.query(
                "SELECT stock_available, stock_reserved, stock_sold FROM projections.products WHERE sku = \(sku)").first
            else { return nil }
            return Stock(available: try row.decode(0), reserved: try row.decode(1), sold: try row.decode(2))
        }
    }

    /// CONTRACT §5 for every product: initial + adjustments = available + reserved by open orders
    /// + sold to confirmed orders, with reserved and sold recomputed from the reservations.
    /// Returns the products that break it.
    func conservationViolations() async throws -> [String] {
        try await pool.withConnection { connection in
            try await connection.query(
                """
                WITH lines AS (
                    SELECT r.status, l->>'sku' AS sku, (l->>'quantity')::bigint AS quantity
                    FROM inventory.reservations r, jsonb_array_elements(r.lines) l
                ), per_product AS (
                    SELECT sku, coalesce(sum(quantity) FILTER (WHERE status = 'reserved'), 0) AS reserved,
                           coalesce(sum(quantity) FILTER (WHERE status = 'sold'), 0) AS sold
                    FROM lines GROUP BY sku
                )
                SELECT p.sku || ': initial ' || p.initial_stock || ' + adjustments ' || p.adjustments || ' vs available ' || p.available
                       || ' + reserved ' || p.reserved || ' (by orders ' || coalesce(o.reserved, 0) || ') + sold ' || p.sold
                       || ' (by orders ' || coalesce(o.sold, 0) || ')'
                FROM inventory.products p LEFT JOIN per_product o ON o.sku = p.sku
                WHERE p.initial_stock + p.adjustments <> p.available + p.reserved + p.sold
                   OR p.reserved <> coalesce(o.reserved, 0) OR p.sold <> coalesce(o.sold, 0)
                """
            ).map { try $0.decode(0, as: String.self) }
        }
    }

    /// The event types of one order in log order.
    func loggedEvents(_ orderId: UUID) async throws -> [String] {
        try await pool.withConnection { connection in
            try await connection.query(
                "SELECT type FROM eventlog.events WHERE correlation_id = \(orderId.uuidString.lowercased()) ORDER BY position"
            ).map { try $0.decode(0, as: String.self) }
        }
    }

    func count(_ sql: String) async throws -> Int {
        try await pool.withConnection { try await $0.query(PostgresQuery(unescaped: sql)).first!.decode(0, as: Int.self) }
    }
}
