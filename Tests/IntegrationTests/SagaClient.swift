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
    func send<Payload: Codable & Sendable>(
        _ type: MessageType, correlationId: String, _ data: Payload, id: UUID = UUID()
    ) async throws -> UUID {
        try await publisher.publish(
            Envelope(id: id, type: type, correlationId: correlationId, causationId: nil, data: data),
            timeout: .seconds(10))
        return id
    }

    func createProduct(_ sku: String, stock: Int, priceCents: Int = 1_000) async throws {
        try await send(
            .productCreate, correlationId: sku,
            CreateProduct(sku: sku, name: "Product \(sku)", priceCents: priceCents, stock: stock))
    }

    /// Creates products and waits until inventory has them all.
    func createProducts(_ stock: [String: Int], priceCents: Int = 1_000) async throws {
        for (sku, count) in stock { try await createProduct(sku, stock: count, priceCents: priceCents) }
        let created = try await eventually(timeout: .seconds(20)) {
            try await pool.withConnection { connection in
                try await connection.query("SELECT count(*) FROM inventory.products").first!.decode(0, as: Int.self)
                    >= stock.count
            }
        }
        #expect(created, "inventory did not create the products")
    }

    @discardableResult
    func placeOrder(
        _ lines: [String: Int], token: String = "tok_ok", orderId: UUID = UUID(), customer: String = "customer-1"
    ) async throws -> UUID {
        let order = PlaceOrder(
            orderId: orderId, customerId: customer,
            lines: lines.sorted { $0.key < $1.key }.map { OrderLine(sku: $0.key, quantity: $0.value) },
            payment: .init(token: token))
        try await send(.orderPlace, correlationId: orderId.canonicalText, order)
        return orderId
    }

    func cancel(_ orderId: UUID) async throws {
        try await send(.orderCancel, correlationId: orderId.canonicalText, CancelOrder(orderId: orderId))
    }

    // MARK: Reading

    /// The order's status in the projection (nil until the projector has seen it).
    func projectedStatus(_ orderId: UUID) async throws -> String? {
        try await pool.withConnection { connection in
            try await connection.query("SELECT status FROM projections.orders WHERE id = \(orderId)").first?.decode(
                0, as: String.self)
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
        var description: String {
            self == .absent ? "no such product" : "available \(available), reserved \(reserved), sold \(sold)"
        }
        /// What `stock` answers before inventory has the product (a test may be waiting for it).
        static let absent = Stock(available: .min, reserved: .min, sold: .min)
    }

    /// Inventory's own numbers for a product.
    func stock(_ sku: String) async throws -> Stock {
        try await pool.withConnection { connection in
            guard
                let row = try await connection.query(
                    "SELECT available, reserved, sold FROM inventory.products WHERE sku = \(sku)"
                ).first
            else { return .absent }
            return Stock(available: try row.decode(0), reserved: try row.decode(1), sold: try row.decode(2))
        }
    }

    /// The inventory's numbers once they equal `expected`, or the last ones seen after `timeout`:
    /// stock moves to sold when inventory handles `order.confirmed`, after the order already shows it.
    func stock(_ sku: String, settlingAt expected: Stock, timeout: Duration = .seconds(10)) async throws -> Stock {
        var seen = try await stock(sku)
        _ = try await eventually(timeout: timeout) {
            seen = try await stock(sku)
            return seen == expected
        }
        return seen
    }

    /// The projection's numbers for a product.
    func projectedStock(_ sku: String) async throws -> Stock? {
        try await pool.withConnection { connection in
            guard
                let row = try await connection.query(
                    "SELECT stock_available, stock_reserved, stock_sold FROM projections.products WHERE sku = \(sku)"
                ).first
            else { return nil }
            return Stock(available: try row.decode(0), reserved: try row.decode(1), sold: try row.decode(2))
        }
    }

    /// docs/interface.md §5 for every product: initial + adjustments = available + reserved by open orders
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
                "SELECT type FROM eventlog.events WHERE correlation_id = \(orderId.canonicalText) ORDER BY position"
            ).map { try $0.decode(0, as: String.self) }
        }
    }

    func count(_ sql: String) async throws -> Int {
        try await pool.withConnection {
            try await $0.query(PostgresQuery(unescaped: sql)).first!.decode(0, as: Int.self)
        }
    }

    /// Transactions of the services' consumers that handled more than one message: inbox rows
    /// written by one transaction share its id (xmin).
    func batchedTransactions() async throws -> Int {
        try await count(
            """
            SELECT count(*) FROM (
                SELECT xmin::text FROM orders.inbox GROUP BY 1 HAVING count(*) > 1
                UNION ALL SELECT xmin::text FROM inventory.inbox GROUP BY 1 HAVING count(*) > 1
                UNION ALL SELECT xmin::text FROM payments.inbox GROUP BY 1 HAVING count(*) > 1
            ) batches
            """)
    }
}

extension SagaClient {
    /// Places `count` orders over the given skus with a mix of payment tokens, `concurrency` at a time.
    func placeMixedOrders(_ count: Int, skus: [String], concurrency: Int = 16, pause: Duration = .zero) async throws
        -> [UUID]
    {
        let tokens = [
            "tok_ok", "tok_ok", "tok_ok", "tok_ok", "tok_ok", "tok_ok", "tok_flaky", "tok_flaky", "tok_declined",
            "tok_slow",
        ]
        return try await withThrowingTaskGroup(of: UUID.self) { group in
            var placed: [UUID] = []
            for index in 0..<count {
                if index >= concurrency { placed.append(try await group.next()!) }
                group.addTask {
                    var lines: [String: Int] = [:]
                    for offset in 0..<(1 + index % 3) {
                        lines[skus[(index + offset * 7) % skus.count]] = 1 + (index + offset) % 2
                    }
                    let id = try await placeOrder(lines, token: tokens[index % tokens.count])
                    if pause > .zero { try await Task.sleep(for: pause) }
                    return id
                }
            }
            for try await id in group { placed.append(id) }
            return placed
        }
    }

    /// Waits until the service and the projection both show every order final.
    func waitUntilAllFinal(_ orders: [UUID], timeout: Duration) async throws -> Bool {
        try await eventually(timeout: timeout) {
            let service = try await count(
                "SELECT count(*) FROM orders.orders WHERE status IN ('confirmed', 'rejected', 'cancelled')")
            let projected = try await count(
                "SELECT count(*) FROM projections.orders WHERE status IN ('confirmed', 'rejected', 'cancelled')")
            return service == orders.count && projected == orders.count
        }
    }

    /// The guarantees once the system has come to rest: effects still in flight (stock moved to
    /// sold after a confirmation, an outbox row about to be published, the projector's last batch)
    /// settle within `timeout`; a lost or doubled effect never does. Returns what still breaks.
    func settledViolations(expectedOrders: Int, timeout: Duration = .seconds(30)) async throws -> [String] {
        var violations: [String] = []
        var first: [String]?
        let started = ContinuousClock.now
        _ = try await eventually(timeout: timeout) {
            violations = try await guaranteeViolations(expectedOrders: expectedOrders)
            if first == nil { first = violations }
            return violations.isEmpty
        }
        if let first, !first.isEmpty, violations.isEmpty {
            print("in flight at first look, settled after \(ContinuousClock.now - started): \(first)")
        }
        return violations
    }

    /// Every guarantee of docs/interface.md §5 that can be checked after the fact; returns what breaks.
    func guaranteeViolations(expectedOrders: Int) async throws -> [String] {
        let violations = try await conservationViolations().map { "conservation: \($0)" }
        let checks: [(String, String)] = [
            ("orders not in the service", "SELECT \(expectedOrders) - count(*) FROM orders.orders"),
            (
                "orders not final",
                "SELECT count(*) FROM orders.orders WHERE status NOT IN ('confirmed', 'rejected', 'cancelled')"
            ),
            (
                "projection differs from the service",
                "SELECT count(*) FROM orders.orders o FULL JOIN projections.orders p ON p.id = o.id WHERE p.status IS DISTINCT FROM o.status"
            ),
            (
                // A product may be restocked many times; an order takes each step once.
                "an event type twice for one order",
                """
                SELECT count(*) FROM (SELECT correlation_id, type FROM eventlog.events
                    WHERE type NOT LIKE 'product.%' AND type NOT IN ('stock.adjusted', 'stock.adjustment_rejected')
                    GROUP BY 1, 2 HAVING count(*) > 1) d
                """
            ),
            (
                "orders without exactly one final event",
                """
                SELECT count(*) FROM orders.orders o WHERE (SELECT count(*) FROM eventlog.events e
                    WHERE e.correlation_id = o.id::text AND e.type IN ('order.confirmed', 'order.rejected', 'order.cancelled')) <> 1
                """
            ),
            (
                "confirmed orders without exactly one settled charge",
                """
                SELECT count(*) FROM orders.orders o LEFT JOIN payments.charges c ON c.order_id = o.id
                WHERE o.status = 'confirmed' AND c.status IS DISTINCT FROM 'settled'
                """
            ),
            (
                "money kept for orders not confirmed",
                """
                SELECT count(*) FROM payments.charges c JOIN orders.orders o ON o.id = c.order_id
                WHERE c.status = 'settled' AND o.status <> 'confirmed'
                """
            ),
            (
                "projected stock differs from inventory",
                """
                SELECT count(*) FROM inventory.products i FULL JOIN projections.products p ON p.sku = i.sku
                WHERE (p.stock_available, p.stock_reserved, p.stock_sold) IS DISTINCT FROM (i.available, i.reserved, i.sold)
                """
            ),
            (
                "unpublished outbox rows",
                "SELECT (SELECT count(*) FROM orders.outbox) + (SELECT count(*) FROM inventory.outbox) + (SELECT count(*) FROM payments.outbox)"
            ),
        ]
        return violations + (try await failing(checks))
    }

    /// "name: n" for each (name, counting query) whose count is not 0.
    func failing(_ checks: [(String, String)]) async throws -> [String] {
        var found: [String] = []
        for (name, sql) in checks {
            let count = try await count(sql)
            if count != 0 { found.append("\(name): \(count)") }
        }
        return found
    }
}
