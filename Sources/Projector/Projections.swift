import DepotModel
import Foundation
import Postgres

/// The read models, kept as a pure function of the event log: every value comes from the
/// events (times are the events' `occurred_at`), so applying the log again in order gives the
/// same rows. `schema` is where the tables are: `projections` live, another one for a rebuild.
///
/// A batch is applied set-wise: the rows its events touch are read in one statement per table,
/// the events are folded into them in memory, in log order, and the results are written back in
/// one upsert per table — a few statements per batch whatever its size.
public struct Projections: Sendable {
    public static let names = ["orders", "products"]

    public let schema: String
    /// The projections to maintain (a rebuild of one leaves the others alone).
    public let included: Set<String>

    public init(schema: String = "projections", only included: Set<String> = Set(Projections.names)) {
        self.schema = schema
        self.included = included
    }

    /// Applies one event to every projection it concerns.
    public func apply(_ event: StoredEvent, on connection: PostgresConnection) async throws {
        try await apply([event], on: connection)
    }

    /// Applies events, in the order given (log order), to every projection they concern. The
    /// writes are deferred: they travel with the transaction's next statement or its COMMIT.
    public func apply(_ events: [StoredEvent], on connection: PostgresConnection) async throws {
        try await apply(try Self.prepare(events), on: connection)
    }

    /// Events whose data has been read, once, whatever number of projections use it; preparing
    /// the next batch can overlap applying this one.
    public struct PreparedEvents: Sendable {
        let facts: [EventFacts]
        public var count: Int { facts.count }
        /// The skus whose stock these events move.
        public var skusMoved: Set<String> { Set(facts.flatMap(\.skusMoved)) }
    }

    public static func prepare(_ events: [StoredEvent]) throws(EnvelopeError) -> PreparedEvents {
        var facts: [EventFacts] = []
        facts.reserveCapacity(events.count)
        for event in events { facts.append(try EventFacts(event)) }
        return PreparedEvents(facts: facts)
    }

    public func apply(_ events: PreparedEvents, on connection: PostgresConnection) async throws {
        guard !events.facts.isEmpty else { return }
        if included.contains("orders") { try await applyToOrders(events.facts, on: connection) }
        if included.contains("products") { try await applyToProducts(events.facts, on: connection) }
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

    /// Each projection's position in the live schema.
    public static func checkpoints(on connection: PostgresConnection) async throws -> [String: Int64] {
        try await connection.query("SELECT projection, position FROM projections.checkpoints").reduce(into: [:]) {
            $0[try $1.decode(0)] = try $1.decode(1)
        }
    }

    // MARK: - Orders

    /// One row of `orders`, as JSON for `jsonb_populate_recordset`.
    struct OrderRow: Codable {
        struct Line: Codable {
            var sku: String
            var quantity: Int
            var unit_price_cents: Int?
        }
        var id: UUID
        var customer_id: String
        var status: String
        var lines: [Line]
        var total_cents: Int?
        var payment_status: String
        var payment_reference: String?
        var reason: String?
        var created_at: String
        var updated_at: String
        var version: Int64
        var position: Int64

        /// The row as `jsonb_populate_recordset` reads it, written without JSONEncoder (a rebuild writes every order).
        var json: JSONValue {
            .object([
                .init("id", .string(id.canonicalText)), .init("customer_id", .string(customer_id)), .init("status", .string(status)),
                .init(
                    "lines",
                    .array(
                        lines.map { line in
                            .object(
                                [.init("sku", .string(line.sku)), .init("quantity", .integer(line.quantity))]
                                    + (line.unit_price_cents.map { [.init("unit_price_cents", .integer($0))] } ?? []))
                        })),
                .init("total_cents", total_cents.map { .integer($0) } ?? .null), .init("payment_status", .string(payment_status)),
                .init("payment_reference", payment_reference.map { .string($0) } ?? .null), .init("reason", reason.map { .string($0) } ?? .null),
                .init("created_at", .string(created_at)), .init("updated_at", .string(updated_at)), .init("version", .integer(Int(version))),
                .init("position", .integer(Int(position))),
            ])
        }
    }

    private func applyToOrders(_ facts: [EventFacts], on connection: PostgresConnection) async throws {
        let relevant = facts.filter { $0.orderKey != nil }
        guard !relevant.isEmpty else { return }
        let ids = Set(relevant.map { $0.orderKey! })
        var rows: [String: OrderRow] = [:]
        for row in try await connection.query(
            """
            SELECT row_to_json(o)::text FROM \(unescaped: schema).orders o
            WHERE id IN (SELECT jsonb_array_elements_text(\(try PostgresJSON(encoding: ids.sorted())))::uuid)
            """)
        {
            let order = try JSONDecoder().decode(OrderRow.self, from: Data((try row.decode(0, as: String.self)).utf8))
            rows[order.id.canonicalText] = order
        }
        var changed: Set<String> = []
        for fact in relevant {
            let key = fact.orderKey!
            let event = fact.event
            if case .placed(let placed) = fact.data {
                guard rows[key] == nil else { continue }  // placed once
                let at = event.occurredAt.postgresTimestampText
                rows[key] = OrderRow(
                    id: placed.orderId, customer_id: placed.customerId, status: "pending",
                    lines: placed.lines.map { .init(sku: $0.sku, quantity: $0.quantity) }, total_cents: nil, payment_status: "none",
                    payment_reference: nil, reason: nil, created_at: at, updated_at: at, version: 1, position: event.position)
                changed.insert(key)
                continue
            }
            guard var order = rows[key] else { continue }  // not placed (yet): nothing to update
            switch (event.type, fact.data) {
            case (.stockReserved, .priced(let reserved)):
                // A reservation can land after the customer's cancel: the order stays cancelled.
                if order.status == "pending" { order.status = "reserved" }
                order.lines = reserved.lines.map { .init(sku: $0.sku, quantity: $0.quantity, unit_price_cents: $0.unitPriceCents) }
                order.total_cents = reserved.totalCents
            case (.paymentRequested, _): order.payment_status = "pending"
            case (.paymentSettled, .settled(let settled)):
                order.payment_status = "settled"
                order.payment_reference = settled.reference
            case (.paymentDeclined, _): order.payment_status = "declined"
            case (.orderConfirmed, _): order.status = "confirmed"
            case (.orderRejected, .reason(let reason)):
                order.status = "rejected"
                order.reason = reason
            case (.orderCancelled, .reason(let reason)):
                order.status = "cancelled"
                order.reason = reason
            default: break  // stock.rejected, stock.released, payment.refunded: history and version only
            }
            order.version += 1
            order.updated_at = event.occurredAt.postgresTimestampText
            order.position = event.position
            rows[key] = order
            changed.insert(key)
        }
        if !changed.isEmpty {
            let written = JSONValue.array(changed.sorted().map { rows[$0]!.json })
            connection.executeLater(
                """
                INSERT INTO \(unescaped: schema).orders
                SELECT * FROM jsonb_populate_recordset(NULL::\(unescaped: schema).orders, \(PostgresJSON(bytes: written.encoded())))
                ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, status = excluded.status, lines = excluded.lines,
                    total_cents = excluded.total_cents, payment_status = excluded.payment_status, payment_reference = excluded.payment_reference,
                    reason = excluded.reason, created_at = excluded.created_at, updated_at = excluded.updated_at, version = excluded.version,
                    position = excluded.position
                """)
        }
        // The history is the log's own rows: copied by the database, not carried through here.
        let positions = "{" + relevant.map { String($0.event.position) }.joined(separator: ",") + "}"
        connection.executeLater(
            """
            INSERT INTO \(unescaped: schema).order_history (order_id, position, type, occurred_at)
            SELECT correlation_id::uuid, position, type, occurred_at FROM eventlog.events
            WHERE position = ANY(\(positions)::bigint[])
            ON CONFLICT DO NOTHING
            """)
    }

    // MARK: - Products

    struct ProductRow: Codable {
        var sku: String
        var name: String
        var price_cents: Int
        var stock_available: Int64
        var stock_reserved: Int64
        var stock_sold: Int64
        var discontinued: Bool
        var version: Int64
        var updated_at: String
        var position: Int64
    }

    private func applyToProducts(_ facts: [EventFacts], on connection: PostgresConnection) async throws {
        // What each event does to which skus.
        var effects: [(EventFacts, [(sku: String, quantity: Int)])] = []
        var skus: Set<String> = []
        for fact in facts {
            let lines: [(sku: String, quantity: Int)]
            switch fact.data {
            case .created, .updated, .discontinued, .adjusted: lines = [(fact.event.correlationId, 0)]
            case .priced(let order) where fact.event.type == .stockReserved || fact.event.type == .orderConfirmed:
                lines = order.lines.map { (sku: $0.sku, quantity: $0.quantity) }
            case .released(let released): lines = released.lines.map { (sku: $0.sku, quantity: $0.quantity) }
            default: continue
            }
            effects.append((fact, lines))
            skus.formUnion(lines.map(\.sku))
        }
        guard !effects.isEmpty else { return }
        var rows: [String: ProductRow] = [:]
        for row in try await connection.query(
            """
            SELECT row_to_json(p)::text FROM \(unescaped: schema).products p
            WHERE sku IN (SELECT jsonb_array_elements_text(\(try PostgresJSON(encoding: skus.sorted()))))
            """)
        {
            let product = try JSONDecoder().decode(ProductRow.self, from: Data((try row.decode(0, as: String.self)).utf8))
            rows[product.sku] = product
        }
        var changed: Set<String> = []
        for (fact, lines) in effects {
            let event = fact.event
            if case .created(let created) = fact.data {
                guard rows[event.correlationId] == nil else { continue }
                rows[created.sku] = ProductRow(
                    sku: created.sku, name: created.name, price_cents: created.priceCents, stock_available: Int64(created.stock), stock_reserved: 0,
                    stock_sold: 0, discontinued: false, version: 1, updated_at: event.occurredAt.postgresTimestampText, position: event.position)
                changed.insert(created.sku)
                continue
            }
            // Quantities per sku: one order's lines may name a sku twice.
            var quantities: [String: Int64] = [:]
            for line in lines { quantities[line.sku, default: 0] += Int64(line.quantity) }
            for (sku, quantity) in quantities {
                guard var product = rows[sku] else { continue }  // unknown product: nothing to update
                switch (event.type, fact.data) {
                case (_, .updated(let updated)):
                    product.name = updated.name
                    product.price_cents = updated.priceCents
                case (_, .discontinued): product.discontinued = true
                case (_, .adjusted(let adjusted)): product.stock_available += Int64(adjusted.delta)
                case (.stockReserved, _):
                    product.stock_available -= quantity
                    product.stock_reserved += quantity
                case (.stockReleased, _):
                    product.stock_available += quantity
                    product.stock_reserved -= quantity
                case (.orderConfirmed, _):
                    product.stock_reserved -= quantity
                    product.stock_sold += quantity
                default: break
                }
                product.version += 1
                product.updated_at = event.occurredAt.postgresTimestampText
                product.position = event.position
                rows[sku] = product
                changed.insert(sku)
            }
        }
        guard !changed.isEmpty else { return }
        let written = changed.sorted().map { rows[$0]! }
        connection.executeLater(
            """
            INSERT INTO \(unescaped: schema).products
            SELECT * FROM jsonb_populate_recordset(NULL::\(unescaped: schema).products, \(try PostgresJSON(encoding: written)))
            ON CONFLICT (sku) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,
                stock_available = excluded.stock_available, stock_reserved = excluded.stock_reserved, stock_sold = excluded.stock_sold,
                discontinued = excluded.discontinued, version = excluded.version, updated_at = excluded.updated_at, position = excluded.position
            """)
    }
}
