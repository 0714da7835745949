import DepotModel
import Foundation
import Postgres

/// The read models, kept as a pure function of the event log: every value comes from the
/// events (times are the events' `occurred_at`), so applying the log again in order gives the
/// same rows. `schema` is where the tables are: `projections` live, another one for a rebuild.
///
/// A batch is applied set-wise: the rows its events touch are read in one statement per table,
/// the events are folded into them in memory, in log order (the pure folds of `Folds.swift`),
/// and the results are written back in one upsert per table — a few statements per batch
/// whatever its size.
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

    private func applyToOrders(_ facts: [EventFacts], on connection: PostgresConnection) async throws {
        let relevant = facts.filter { $0.orderKey != nil }
        guard !relevant.isEmpty else { return }
        let ids = Set(relevant.map { $0.orderKey! })
        var rows: [String: OrderRow] = [:]
        for row in try await connection.query(
            """
            SELECT \(unescaped: OrderRow.columns) FROM \(unescaped: schema).orders
            WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text(\(try PostgresJSON(encoding: ids.sorted())))::uuid))
            """)
        {
            let order = try OrderRow(row)
            rows[order.id.canonicalText] = order
        }
        let changed = Self.foldOrders(relevant, into: &rows)
        if !changed.isEmpty {
            let written = JSONValue.array(changed.sorted().map { rows[$0]!.record })
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

    private func applyToProducts(_ facts: [EventFacts], on connection: PostgresConnection) async throws {
        let skus = Set(facts.flatMap { Self.productLines($0)?.map(\.sku) ?? [] })
        guard !skus.isEmpty else { return }
        var rows: [String: ProductRow] = [:]
        for row in try await connection.query(
            """
            SELECT row_to_json(p)::text FROM \(unescaped: schema).products p
            WHERE sku = ANY (ARRAY(SELECT jsonb_array_elements_text(\(try PostgresJSON(encoding: skus.sorted())))))
            """)
        {
            let product = try JSONDecoder().decode(
                ProductRow.self, from: Data((try row.decode(0, as: String.self)).utf8))
            rows[product.sku] = product
        }
        let changed = Self.foldProducts(facts, into: &rows)
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
