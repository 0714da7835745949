import DepotModel
import Foundation
import Logging
import Messaging
import Postgres

/// The inventory service: the catalog and stock (schema `inventory`).
///
/// Stock moves only here: reserve all lines of an order or none, release on cancellation,
/// sell on confirmation. Available stock never goes below zero (a CHECK guards it too), and
/// every handler locks product rows in sku order (after the order's reservation row, if any),
/// so concurrent orders cannot deadlock or oversell.
public struct InventoryHandler: MessageHandler {
    public static let schema = "inventory"
    public static let queue = QueueSpec(
        name: "depot.inventory",
        handles: [
            .productCreate, .productUpdate, .productDiscontinue, .stockAdjust, .orderPlaced, .orderConfirmed,
            .orderCancelled,
        ])

    public init() {}

    public func handle(_ message: IncomingMessage, context: HandlerContext) async throws {
        switch message.type {
        case .productCreate: try await create(message.decode(CreateProduct.self), context)
        case .productUpdate: try await update(message.decode(UpdateProduct.self), context)
        case .productDiscontinue: try await discontinue(message.decode(DiscontinueProduct.self), context)
        case .stockAdjust: try await adjust(message.decode(AdjustStock.self), context)
        case .orderPlaced: try await reserve(message.decode(OrderPlaced.self).data, context)
        case .orderConfirmed: try await sell(message.decode(OrderConfirmed.self).data.orderId, context)
        case .orderCancelled: try await release(message.decode(OrderEnded.self).data.orderId, context)
        default: throw PermanentFailure("inventory does not handle \(message.type.rawValue)")
        }
    }

    /// Locks every product the messages touch, in sku order, before anything else: across a
    /// batch the handlers' own locks would otherwise come in message order, and two batches over
    /// the same products could deadlock. Products of a sale or release are those of the order's
    /// reservation, read without a lock (a reservation's lines never change once written).
    ///
    /// First, one batch at a time per order (a transaction-scoped advisory lock per order, in key
    /// order): a cancel handled while another batch is still writing its order's reservation would
    /// not see the reservation here, and would lock its products only later, out of sku order.
    public func prepare(_ messages: [IncomingMessage], on connection: PostgresConnection) async throws {
        var skus: Set<String> = []
        var orders: [String] = []
        var touched: [String] = []
        for message in messages {
            switch message.type {
            case .orderPlaced:
                let placed = try message.decode(OrderPlaced.self).data
                skus.formUnion(placed.lines.map(\.sku))
                touched.append(placed.orderId.canonicalText)
            case .stockAdjust: skus.insert(try message.decode(AdjustStock.self).data.sku)
            case .orderConfirmed: orders.append(try message.decode(OrderConfirmed.self).data.orderId.canonicalText)
            case .orderCancelled: orders.append(try message.decode(OrderEnded.self).data.orderId.canonicalText)
            default: continue
            }
        }
        touched += orders
        guard !skus.isEmpty || !touched.isEmpty else { return }
        // These travel with the first statement that follows; their rows are only locked, not read.
        if !touched.isEmpty {
            connection.executeLater(
                """
                SELECT pg_advisory_xact_lock(\(Self.orderLockSpace), key)
                FROM (SELECT DISTINCT hashtext(id) AS key FROM jsonb_array_elements_text(\(try PostgresJSON(encoding: touched))) id ORDER BY 1) keys
                """)
        }
        let named = try PostgresJSON(encoding: skus.sorted())
        // Arrays (= ANY) rather than IN (subquery): the planner then uses the primary keys.
        if orders.isEmpty {
            connection.executeLater(
                """
                SELECT 1 FROM inventory.products WHERE sku = ANY (ARRAY(SELECT jsonb_array_elements_text(\(named))))
                ORDER BY sku FOR UPDATE
                """)
        } else {
            connection.executeLater(
                """
                SELECT 1 FROM inventory.products WHERE sku = ANY (ARRAY(
                    SELECT jsonb_array_elements_text(\(named))
                    UNION
                    SELECT line->>'sku' FROM inventory.reservations r, jsonb_array_elements(r.lines) line
                    WHERE r.order_id = ANY (ARRAY(SELECT jsonb_array_elements_text(\(try PostgresJSON(encoding: orders)))::uuid))
                )) ORDER BY sku FOR UPDATE
                """)
        }
    }

    /// The first key of inventory's per-order advisory locks ("INVO"): the two-key form, a space
    /// of its own apart from the one-key locks elsewhere (the projection rebuild's).
    static let orderLockSpace: Int32 = 0x494E_564F

    // MARK: - Catalog

    private func create(_ command: Envelope<CreateProduct>, _ context: HandlerContext) async throws {
        let product = command.data
        guard SKU.isValid(product.sku), !product.name.isEmpty, product.priceCents >= 0, product.stock >= 0 else {
            throw PermanentFailure("product.create needs a valid sku, a name, price_cents ≥ 0 and stock ≥ 0")
        }
        let inserted = try await context.connection.execute(
            """
            INSERT INTO inventory.products (sku, name, price_cents, initial_stock, available)
            VALUES (\(product.sku), \(product.name), \(product.priceCents), \(product.stock), \(product.stock))
            ON CONFLICT (sku) DO NOTHING
            """)
        guard inserted == 1 else {
            context.logger.notice(
                "product.create for an existing sku ignored", metadata: [LogKey.sku: "\(product.sku)"])
            return
        }
        try await context.emit(
            .productCreated, correlationId: product.sku,
            ProductCreated(sku: product.sku, name: product.name, priceCents: product.priceCents, stock: product.stock))
    }

    private func update(_ command: Envelope<UpdateProduct>, _ context: HandlerContext) async throws {
        let change = command.data
        if let price = change.priceCents, price < 0 {
            throw PermanentFailure("product.update: price_cents must be ≥ 0")
        }
        if let name = change.name, name.isEmpty { throw PermanentFailure("product.update: name must not be empty") }
        let rows = try await context.connection.query(
            """
            UPDATE inventory.products SET name = coalesce(\(change.name), name), price_cents = coalesce(\(change.priceCents), price_cents),
                version = version + 1, updated_at = now()
            WHERE sku = \(change.sku) RETURNING name, price_cents
            """)
        guard let row = rows.first else { throw ProductNotKnownYet(sku: change.sku) }
        try await context.emit(
            .productUpdated, correlationId: change.sku,
            ProductUpdated(sku: change.sku, name: try row.decode(0), priceCents: try row.decode(1)))
    }

    private func discontinue(_ command: Envelope<DiscontinueProduct>, _ context: HandlerContext) async throws {
        let sku = command.data.sku
        let changed = try await context.connection.execute(
            """
            UPDATE inventory.products SET discontinued = true, version = version + 1, updated_at = now()
            WHERE sku = \(sku) AND NOT discontinued
            """)
        guard changed == 1 else {
            let known = try await context.connection.query("SELECT 1 FROM inventory.products WHERE sku = \(sku)")
            if known.isEmpty { throw ProductNotKnownYet(sku: sku) }
            return  // discontinued already
        }
        try await context.emit(.productDiscontinued, correlationId: sku, ProductDiscontinued(sku: sku))
    }

    private func adjust(_ command: Envelope<AdjustStock>, _ context: HandlerContext) async throws {
        let adjustment = command.data
        let rows = try await context.connection.query(
            "SELECT available FROM inventory.products WHERE sku = \(adjustment.sku) FOR UPDATE")
        guard let available = try rows.first?.decode(0, as: Int.self) else {
            throw ProductNotKnownYet(sku: adjustment.sku)
        }
        guard available + adjustment.delta >= 0 else {
            try await context.emit(
                .stockAdjustmentRejected, correlationId: adjustment.sku,
                StockAdjustmentRejected(
                    sku: adjustment.sku, delta: adjustment.delta, available: available,
                    reason: "write-off of \(-adjustment.delta) exceeds the \(available) available"))
            return
        }
        context.connection.executeLater(
            """
            UPDATE inventory.products SET available = available + \(adjustment.delta), adjustments = adjustments + \(adjustment.delta),
                version = version + 1, updated_at = now()
            WHERE sku = \(adjustment.sku)
            """)
        try await context.emit(
            .stockAdjusted, correlationId: adjustment.sku,
            StockAdjusted(sku: adjustment.sku, delta: adjustment.delta, available: available + adjustment.delta))
    }

    // MARK: - Reservations

    /// Reserves every line or none. An order cancelled before it got here stays unreserved.
    private func reserve(_ order: OrderPlaced, _ context: HandlerContext) async throws {
        let connection = context.connection
        let correlation = order.orderId.canonicalText
        // Claim the order's row first: a cancel racing this waits for the commit, then releases.
        let claimed = try await connection.execute(
            """
            INSERT INTO inventory.reservations (order_id, status, lines) VALUES (\(order.orderId), 'deciding', '[]')
            ON CONFLICT (order_id) DO NOTHING
            """)
        guard claimed == 1 else { return }  // already decided, or cancelled first

        let quantities = Dictionary(order.lines.map { ($0.sku, $0.quantity) }, uniquingKeysWith: +)
        let skus = try PostgresJSON(encoding: quantities.keys.sorted())
        var products: [String: (price: Int, available: Int, discontinued: Bool)] = [:]
        for row in try await connection.query(
            """
            SELECT sku, price_cents, available, discontinued FROM inventory.products
            WHERE sku = ANY (ARRAY(SELECT jsonb_array_elements_text(\(skus)))) ORDER BY sku FOR UPDATE
            """)
        {
            products[try row.decode(0)] = (try row.decode(1), try row.decode(2), try row.decode(3))
        }
        if let reason = Self.rejection(order.lines, quantities: quantities, products: products) {
            connection.executeLater(
                "UPDATE inventory.reservations SET status = 'rejected' WHERE order_id = \(order.orderId)")
            try await context.emit(
                .stockRejected, correlationId: correlation, StockRejected(orderId: order.orderId, reason: reason))
            return
        }
        let priced = order.lines.map {
            PricedLine(sku: $0.sku, quantity: $0.quantity, unitPriceCents: products[$0.sku]!.price)
        }
        connection.executeLater(
            """
            UPDATE inventory.products p SET available = p.available - l.quantity, reserved = p.reserved + l.quantity,
                version = p.version + 1, updated_at = now()
            FROM (SELECT key AS sku, value::bigint AS quantity FROM jsonb_each_text(\(try PostgresJSON(encoding: quantities)))) l
            WHERE p.sku = l.sku
            """)
        connection.executeLater(
            """
            UPDATE inventory.reservations SET status = 'reserved', lines = \(try PostgresJSON(encoding: order.lines))
            WHERE order_id = \(order.orderId)
            """)
        let total = priced.reduce(0) { $0 + $1.quantity * $1.unitPriceCents }
        try await context.emit(
            .stockReserved, correlationId: correlation,
            StockReserved(orderId: order.orderId, lines: priced, totalCents: total))
    }

    /// Why an order cannot be reserved, naming the first line that fails; nil when it can.
    static func rejection(
        _ lines: [OrderLine], quantities: [String: Int],
        products: [String: (price: Int, available: Int, discontinued: Bool)]
    ) -> String? {
        if lines.isEmpty { return "the order has no lines" }
        for line in lines {
            guard line.quantity > 0 else { return "quantity of \(line.sku) must be at least 1" }
            guard let product = products[line.sku] else { return "unknown sku \(line.sku)" }
            guard !product.discontinued else { return "sku \(line.sku) is discontinued" }
            let wanted = quantities[line.sku] ?? line.quantity
            guard product.available >= wanted else {
                return "not enough stock of \(line.sku): \(wanted) wanted, \(product.available) available"
            }
        }
        return nil
    }

    private func sell(_ orderId: UUID, _ context: HandlerContext) async throws {
        guard let lines = try await takeReservation(orderId, becoming: "sold", context) else { return }
        try moveStock(lines, set: "reserved = p.reserved - l.quantity, sold = p.sold + l.quantity", context)
    }

    /// Gives reserved stock back; a cancel that arrives before its order leaves a marker so the
    /// order, when it comes, reserves nothing.
    private func release(_ orderId: UUID, _ context: HandlerContext) async throws {
        let marked = try await context.connection.execute(
            """
            INSERT INTO inventory.reservations (order_id, status, lines) VALUES (\(orderId), 'cancelled', '[]')
            ON CONFLICT (order_id) DO NOTHING
            """)
        guard marked == 0, let lines = try await takeReservation(orderId, becoming: "released", context) else { return }
        try moveStock(lines, set: "reserved = p.reserved - l.quantity, available = p.available + l.quantity", context)
        try await context.emit(
            .stockReleased, correlationId: orderId.canonicalText, StockReleased(orderId: orderId, lines: lines))
    }

    /// Applies `set` (SQL over `p`, the product, and `l.quantity`, the order's total of that sku) to every product of `lines`.
    private func moveStock(_ lines: [OrderLine], set: String, _ context: HandlerContext) throws {
        // Lock the products in sku order first, as every handler here does: an UPDATE … FROM
        // locks rows in its join's order, and two of those over the same products deadlock.
        let skus = try PostgresJSON(encoding: Set(lines.map(\.sku)).sorted())
        context.connection.executeLater(
            """
            SELECT 1 FROM inventory.products WHERE sku = ANY (ARRAY(SELECT jsonb_array_elements_text(\(skus)))) ORDER BY sku FOR UPDATE
            """)
        context.connection.executeLater(
            """
            UPDATE inventory.products p SET \(unescaped: set), version = p.version + 1, updated_at = now()
            FROM (SELECT x->>'sku' AS sku, sum((x->>'quantity')::bigint) AS quantity
                  FROM jsonb_array_elements(\(try PostgresJSON(encoding: lines))) x GROUP BY 1) l
            WHERE p.sku = l.sku
            """)
    }

    /// Moves a `reserved` reservation to `status` and returns its lines; nil when it is not reserved.
    private func takeReservation(_ orderId: UUID, becoming status: String, _ context: HandlerContext) async throws
        -> [OrderLine]?
    {
        let rows = try await context.connection.query(
            """
            UPDATE inventory.reservations SET status = \(status), updated_at = now()
            WHERE order_id = \(orderId) AND status = 'reserved' RETURNING lines
            """)
        guard let row = rows.first else { return nil }
        return try row.decode(0, as: PostgresJSON.self).decode([OrderLine].self)
    }
}

/// A command for a product inventory has not created (yet): commands are handled concurrently,
/// so one may overtake its product.create. Retried later, then dead-lettered for a person.
struct ProductNotKnownYet: Error, CustomStringConvertible {
    var sku: String
    var description: String { "product \(sku) is not known (yet)" }
}

/// The contract's sku rule: `[A-Za-z0-9._-]{1,64}`.
public enum SKU {
    public static func isValid(_ sku: String) -> Bool {
        (1...64).contains(sku.utf8.count)
            && sku.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E
                    || $0 == 0x5F || $0 == 0x2D
            }
    }
}
