import ArgumentParser
import Foundation
import Operations
import Postgres

/// Replay speed: rebuilding every projection from a generated log, against the database's own
/// ceiling for the same work — set-based SQL reading the same events and writing the same rows.
extension DepotBench {
    func replayBenchmark() async throws {
        let benchURL = try await freshDatabase("depot_bench_replay")
        var options = PostgresConfiguration.Options()
        options.maxConnections = 2
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: benchURL, options: options))

        let orders = replayEvents / 5
        log("generating \(orders * 5 + 20) events (20 products, \(orders) confirmed orders of 5 events each)")
        try await pool.withConnection { connection in
            try await connection.executeScript(unescaped: Self.generateLog(orders: orders))
        }
        let total = try await pool.withConnection {
            try await $0.query("SELECT count(*) FROM eventlog.events").first!.decode(0, as: Int.self)
        }

        var depotRates: [Double] = []
        var sqlRates: [Double] = []
        for round in 0..<rounds {
            for side in round % 2 == 0 ? ["sql", "depot"] : ["depot", "sql"] {
                let started = ContinuousClock.now
                if side == "depot" {
                    try await ProjectionRebuild(pool: pool).run()
                    depotRates.append(Double(total) / seconds(since: started))
                } else {
                    try await pool.withConnection { try await $0.executeScript(unescaped: Self.ceilingSQL) }
                    sqlRates.append(Double(total) / seconds(since: started))
                }
            }
            log(
                "round \(round + 1): depot replay \(Int(depotRates.last!)) events/s, SQL \(Int(sqlRates.last!)) events/s"
            )
        }
        // The two must have written the same rows.
        let differing = try await pool.withConnection { connection in
            try await connection.query(
                """
                SELECT (SELECT count(*) FROM (SELECT id, status, lines, total_cents, payment_status, payment_reference, version, position FROM projections.orders
                        EXCEPT SELECT id, status, lines, total_cents, payment_status, payment_reference, version, position FROM ceiling.orders) d)
                     + (SELECT count(*) FROM (SELECT sku, stock_available, stock_reserved, stock_sold, version FROM projections.products
                        EXCEPT SELECT sku, stock_available, stock_reserved, stock_sold, version FROM ceiling.products) d)
                     + abs((SELECT count(*) FROM projections.order_history) - (SELECT count(*) FROM ceiling.order_history))
                """
            ).first!.decode(0, as: Int.self)
        }
        await pool.shutdown()
        print("")
        print("| work | events | events/s | reference | reference events/s | ratio |")
        print("|---|---:|---:|---|---:|---:|")
        let depotRate = median(depotRates)
        let sqlRate = median(sqlRates)
        print(
            "| depot replay projections (all) | \(total) | \(Int(depotRate)) | set-based SQL writing the same rows | \(Int(sqlRate)) | \(String(format: "%.0f%%", 100 * depotRate / sqlRate)) |"
        )
        print("")
        print("medians of \(rounds) rounds; rows differing between the two results: \(differing)")
    }

    /// A log of `orders` confirmed orders (placed, reserved, payment requested and settled,
    /// confirmed) over 20 products, as the services would have written it.
    static func generateLog(orders: Int) -> String {
        """
        INSERT INTO eventlog.events (id, type, version, correlation_id, causation_id, occurred_at, body)
        SELECT md5('p' || s)::uuid, 'product.created', 1, 'sku-' || s, NULL, timestamptz '2026-01-01 00:00:00+00',
               jsonb_build_object('id', md5('p' || s)::uuid, 'type', 'product.created', 'version', 1,
                   'occurred_at', '2026-01-01T00:00:00.000Z', 'correlation_id', 'sku-' || s, 'causation_id', NULL,
                   'data', jsonb_build_object('sku', 'sku-' || s, 'name', 'Product ' || s, 'price_cents', 100, 'stock', 100000000))::text
        FROM generate_series(0, 19) s;

        INSERT INTO eventlog.events (id, type, version, correlation_id, causation_id, occurred_at, body)
        SELECT id, type, 1, oid::text, NULL, at,
               jsonb_build_object('id', id, 'type', type, 'version', 1, 'occurred_at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'correlation_id', oid::text, 'causation_id', NULL, 'data', data)::text
        FROM (
            SELECT md5(i || '-' || k)::uuid AS id, md5('o' || i)::uuid AS oid, k,
                   timestamptz '2026-01-01 00:00:01+00' + make_interval(secs => i * 0.01 + k * 0.001) AS at,
                   (ARRAY['order.placed', 'stock.reserved', 'payment.requested', 'payment.settled', 'order.confirmed'])[k] AS type,
                   CASE k
                       WHEN 1 THEN jsonb_build_object('order_id', md5('o' || i)::uuid, 'customer_id', 'c-' || (i % 1000),
                           'lines', jsonb_build_array(jsonb_build_object('sku', 'sku-' || (i % 20), 'quantity', 1)))
                       WHEN 2 THEN jsonb_build_object('order_id', md5('o' || i)::uuid, 'total_cents', 100,
                           'lines', jsonb_build_array(jsonb_build_object('sku', 'sku-' || (i % 20), 'quantity', 1, 'unit_price_cents', 100)))
                       WHEN 3 THEN jsonb_build_object('order_id', md5('o' || i)::uuid, 'amount_cents', 100, 'token', 'tok_ok')
                       WHEN 4 THEN jsonb_build_object('order_id', md5('o' || i)::uuid, 'amount_cents', 100, 'reference', 'sim_' || substr(md5('r' || i), 1, 20))
                       ELSE jsonb_build_object('order_id', md5('o' || i)::uuid, 'total_cents', 100,
                           'lines', jsonb_build_array(jsonb_build_object('sku', 'sku-' || (i % 20), 'quantity', 1, 'unit_price_cents', 100)))
                   END AS data
            FROM generate_series(1, \(orders)) i, generate_series(1, 5) k
            ORDER BY i, k
        ) e;
        ANALYZE eventlog.events;
        """
    }

    /// The same projection rows, computed by PostgreSQL in set-based statements from the same events.
    static let ceilingSQL = """
        DROP SCHEMA IF EXISTS ceiling CASCADE;
        CREATE SCHEMA ceiling;
        CREATE TABLE ceiling.orders (LIKE projections.orders INCLUDING ALL);
        CREATE TABLE ceiling.order_history (LIKE projections.order_history INCLUDING ALL);
        CREATE TABLE ceiling.products (LIKE projections.products INCLUDING ALL);
        INSERT INTO ceiling.order_history (order_id, position, type, occurred_at)
        SELECT correlation_id::uuid, position, type, occurred_at FROM eventlog.events WHERE type NOT LIKE 'product.%' AND type <> 'stock.adjusted';
        INSERT INTO ceiling.orders
        SELECT correlation_id::uuid,
               max(body::jsonb #>> '{data,customer_id}') FILTER (WHERE type = 'order.placed'),
               CASE WHEN bool_or(type = 'order.confirmed') THEN 'confirmed' WHEN bool_or(type = 'order.cancelled') THEN 'cancelled'
                    WHEN bool_or(type = 'order.rejected') THEN 'rejected' WHEN bool_or(type = 'stock.reserved') THEN 'reserved' ELSE 'pending' END,
               coalesce(max((body::jsonb #> '{data,lines}')::text) FILTER (WHERE type = 'stock.reserved'),
                        max((body::jsonb #> '{data,lines}')::text) FILTER (WHERE type = 'order.placed'))::jsonb,
               max((body::jsonb #>> '{data,total_cents}')::bigint) FILTER (WHERE type = 'stock.reserved'),
               CASE WHEN bool_or(type = 'payment.settled') THEN 'settled' WHEN bool_or(type = 'payment.declined') THEN 'declined'
                    WHEN bool_or(type = 'payment.requested') THEN 'pending' ELSE 'none' END,
               max(body::jsonb #>> '{data,reference}') FILTER (WHERE type = 'payment.settled'),
               max(body::jsonb #>> '{data,reason}') FILTER (WHERE type IN ('order.rejected', 'order.cancelled')),
               min(occurred_at), max(occurred_at), count(*), max(position)
        FROM eventlog.events WHERE type NOT LIKE 'product.%' AND type <> 'stock.adjusted' AND type <> 'stock.adjustment_rejected'
        GROUP BY correlation_id;
        INSERT INTO ceiling.products
        SELECT p.sku, p.name, p.price_cents, p.stock - coalesce(m.sold, 0) - coalesce(m.reserved, 0), coalesce(m.reserved, 0), coalesce(m.sold, 0),
               false, 1 + coalesce(m.moves, 0), coalesce(m.updated_at, p.at), coalesce(m.position, p.position)
        FROM (SELECT body::jsonb #>> '{data,sku}' AS sku, body::jsonb #>> '{data,name}' AS name, (body::jsonb #>> '{data,price_cents}')::bigint AS price_cents,
                     (body::jsonb #>> '{data,stock}')::bigint AS stock, occurred_at AS at, position
              FROM eventlog.events WHERE type = 'product.created') p
        LEFT JOIN (
            SELECT l ->> 'sku' AS sku,
                   sum(CASE type WHEN 'stock.reserved' THEN (l ->> 'quantity')::bigint WHEN 'order.confirmed' THEN -(l ->> 'quantity')::bigint
                                 WHEN 'stock.released' THEN -(l ->> 'quantity')::bigint ELSE 0 END) AS reserved,
                   sum(CASE type WHEN 'order.confirmed' THEN (l ->> 'quantity')::bigint ELSE 0 END) AS sold,
                   count(*) AS moves, max(occurred_at) AS updated_at, max(position) AS position
            FROM eventlog.events, jsonb_array_elements(body::jsonb #> '{data,lines}') l
            WHERE type IN ('stock.reserved', 'stock.released', 'order.confirmed')
            GROUP BY 1) m ON m.sku = p.sku;
        """
}
