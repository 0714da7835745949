import AMQP
import DepotModel
import Foundation
import Inventory
import Messaging
import Postgres
import Testing

/// A service consumer handles what is waiting in batches, one transaction each, and a batch
/// with a bad message in it still commits the good ones.
@Suite("Batches per transaction", .serialized)
struct BatchingTests {
    @Test("a backlog is handled in batches; a poison, a failing and a repeated message inside them are handled alone")
    func backlogInBatches() async throws {
        let port = TestEnvironment.freePort()
        let depot = try await IsolatedDepot.make(["DEPOT_ADMIN_PORT": "\(port)"])
        let migrate = try depot.start("migrate", "--topology")
        while migrate.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(migrate.terminationStatus == 0, "logs: \(depot.logDirectory.path)")
        let client = try await SagaClient(depot)

        // The backlog waits in depot.inventory before its consumer starts: 60 creates, one
        // malformed body, one create the handler refuses, and one message id twice.
        var repeated = UUID()
        for index in 0..<60 {
            let id = try await client.send(
                .productCreate, correlationId: "b-\(index)",
                CreateProduct(sku: "b-\(index)", name: "B \(index)", priceCents: 100, stock: index))
            if index == 20 { repeated = id }
            if index == 10 {
                try await client.amqp.publish(
                    OutgoingMessage("not json", properties: .persistentJSON(messageId: UUID().uuidString)),
                    exchange: "", routingKey: "depot.inventory")
            }
            if index == 30 {
                try await client.send(
                    .productCreate, correlationId: "refused",
                    CreateProduct(sku: "refused", name: "Refused", priceCents: 100, stock: -1))
            }
            if index == 40 {
                try await client.send(
                    .productCreate, correlationId: "b-20",
                    CreateProduct(sku: "b-20", name: "B 20", priceCents: 100, stock: 20), id: repeated)
            }
        }
        try depot.start("inventory")
        let created = try await eventually(timeout: .seconds(30)) {
            let products = try await client.count("SELECT count(*) FROM inventory.products")
            let dead = try await client.amqp.inspectQueue("depot.inventory.dead").messageCount
            return products == 60 && dead == 2
        }
        #expect(created, "logs: \(depot.logDirectory.path)")
        #expect(try await client.count("SELECT count(*) FROM inventory.products WHERE available = initial_stock") == 60)
        #expect(try await client.count("SELECT count(*) FROM inventory.inbox") == 60)
        #expect(try await client.count("SELECT count(*) FROM inventory.products WHERE sku = 'refused'") == 0)

        let metrics = String(
            decoding: try await Curl.request("GET", "http://127.0.0.1:\(port)/metrics").body, as: UTF8.self)
        func value(_ series: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap {
                Double($0.split(separator: " ").last!)
            }
        }
        let queue = #"{queue="depot.inventory"}"#
        let batches = value("depot_consumer_batch_size_count\(queue)") ?? 0
        let messages = value("depot_consumer_batch_size_sum\(queue)") ?? 0
        // 63 deliveries; with the consumer started on a full queue most share a transaction.
        #expect(messages == 63, "\(metrics)")
        #expect(batches > 0 && batches <= 20, "batches: \(batches)")
        #expect((value("depot_consumer_batch_splits_total\(queue)") ?? 0) >= 1)
        #expect(value(#"depot_messages_consumed_total{queue="depot.inventory",outcome="duplicate"}"#) == 1)
        #expect(value(#"depot_messages_consumed_total{queue="depot.inventory",outcome="ok"}"#) == 60)
        #expect(value(#"depot_messages_consumed_total{queue="depot.inventory",outcome="dead_lettered"}"#) == 2)
        await client.close()
        await depot.tearDown()
    }

    @Test("payments is never batched: a backlog of charges is handled one per transaction")
    func paymentsOnePerTransaction() async throws {
        let depot = try await IsolatedDepot.make()
        let migrate = try depot.start("migrate", "--topology")
        while migrate.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(migrate.terminationStatus == 0, "logs: \(depot.logDirectory.path)")
        let client = try await SagaClient(depot)
        for _ in 0..<30 {
            let order = UUID()
            try await client.send(
                .paymentRequested, correlationId: order.canonicalText,
                PaymentRequested(orderId: order, amountCents: 100, token: "tok_ok"))
        }
        try depot.start("payments")
        let settled = try await eventually(timeout: .seconds(30)) {
            try await client.count("SELECT count(*) FROM payments.charges WHERE status = 'settled'") == 30
        }
        #expect(settled, "logs: \(depot.logDirectory.path)")
        // Rows written by one transaction share its xmin: none of the inbox's do.
        #expect(
            try await client.count(
                "SELECT count(*) FROM (SELECT xmin::text FROM payments.inbox GROUP BY 1 HAVING count(*) > 1) shared")
                == 0)
        #expect(try await client.count("SELECT count(*) FROM payments.inbox") == 30)
        await client.close()
        await depot.tearDown()
    }

    @Test(
        "inventory's prepare locks exactly the products of the batch: those named, and those of a sold order's reservation"
    )
    func prepareLocksWhatTheBatchTouches() async throws {
        let (depot, pool) = try await Self.inventory(products: ["named", "reserved", "untouched"], connections: 2)
        let sold = UUID()
        try await pool.withConnection { connection in
            try await connection.execute(
                """
                INSERT INTO inventory.reservations (order_id, status, lines)
                VALUES (\(sold), 'reserved', '[{"sku":"reserved","quantity":1}]'),
                       (\(UUID()), 'reserved', '[{"sku":"untouched","quantity":1}]')
                """)
        }
        let batch = [
            try Self.message(
                .orderPlaced, OrderPlaced(orderId: UUID(), customerId: "c", lines: [.init(sku: "named", quantity: 1)])),
            try Self.message(.orderConfirmed, OrderConfirmed(orderId: sold, lines: [], totalCents: 0)),
        ]
        let other = try depot.pool(maxConnections: 1)
        try await pool.withTransaction { connection in
            try await InventoryHandler().prepare(batch, on: connection)
            _ = try await connection.query("SELECT 1")  // sends the pipelined lock
            var locked: [String] = []
            for sku in ["named", "reserved", "untouched"] {
                do {
                    _ = try await other.withConnection {
                        try await $0.query("SELECT 1 FROM inventory.products WHERE sku = \(sku) FOR UPDATE NOWAIT")
                    }
                } catch let error as PostgresError where error.code == .lockNotAvailable {
                    locked.append(sku)
                }
            }
            #expect(locked == ["named", "reserved"])
        }
        await other.shutdown()
        await pool.shutdown()
        await depot.tearDown()
    }

    @Test(
        "a cancel's batch waits for the batch still writing its order's reservation, then locks that order's products"
    )
    func aCancelWaitsForItsOrdersReservation() async throws {
        let (depot, pool) = try await Self.inventory(products: ["a-first", "z-last"], connections: 3)
        let order = UUID()
        let (placed, placedNow) = AsyncStream<Void>.makeStream()
        let (commit, commitNow) = AsyncStream<Void>.makeStream()
        let (locked, lockedNow) = AsyncStream<Void>.makeStream()
        let (rollBack, rollBackNow) = AsyncStream<Void>.makeStream()
        // The placing batch has taken its locks and written the reservation, not committed yet.
        let placing = Task {
            try await pool.withTransaction { connection in
                try await InventoryHandler().prepare(
                    [
                        try Self.message(
                            .orderPlaced,
                            OrderPlaced(orderId: order, customerId: "c", lines: [.init(sku: "a-first", quantity: 1)]))
                    ], on: connection)
                try await connection.execute(
                    """
                    INSERT INTO inventory.reservations (order_id, status, lines)
                    VALUES (\(order), 'reserved', '[{"sku":"a-first","quantity":1}]')
                    """)
                placedNow.yield()
                for await _ in commit { break }
            }
        }
        for await _ in placed { break }
        // The cancelling batch also restocks z-last: without waiting, it would lock z-last now and
        // a-first only when its release finds the reservation, out of sku order.
        let cancelling = Task {
            try await pool.withConnection { connection in
                try await connection.execute("BEGIN")
                try await InventoryHandler().prepare(
                    [
                        try Self.message(.stockAdjust, AdjustStock(sku: "z-last", delta: 1)),
                        try Self.message(.orderCancelled, OrderEnded(orderId: order, reason: "cancelled")),
                    ], on: connection)
                _ = try await connection.query("SELECT 1")  // sends the pipelined locks
                lockedNow.yield()
                for await _ in rollBack { break }
                try await connection.execute("ROLLBACK")
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        let observer = try depot.pool(maxConnections: 1)
        func lockedByOthers(_ sku: String) async throws -> Bool {
            do {
                _ = try await observer.withConnection {
                    try await $0.query("SELECT 1 FROM inventory.products WHERE sku = \(sku) FOR UPDATE NOWAIT")
                }
                return false
            } catch let error as PostgresError where error.code == .lockNotAvailable {
                return true
            }
        }
        #expect(try await !lockedByOthers("z-last"), "the cancelling batch locked a product before its order's turn")
        commitNow.yield()
        try await placing.value
        for await _ in locked { break }
        #expect(try await lockedByOthers("a-first"), "the cancel's batch did not lock its order's reserved product")
        #expect(try await lockedByOthers("z-last"))
        rollBackNow.yield()
        try await cancelling.value
        await observer.shutdown()
        await pool.shutdown()
        await depot.tearDown()
    }

    /// A migrated database of its own with these products, 5 of each available.
    static func inventory(products: [String], connections: Int) async throws -> (IsolatedDepot, PostgresPool) {
        let depot = try await IsolatedDepot.make()
        let migrated = try await depot.run("migrate")
        #expect(migrated.status == 0, "\(migrated.output)")
        let pool = try depot.pool(maxConnections: connections)
        try await pool.withConnection { connection in
            for sku in products {
                try await connection.execute(
                    "INSERT INTO inventory.products (sku, name, price_cents, initial_stock, available) VALUES (\(sku), \(sku), 1, 5, 5)"
                )
            }
        }
        return (depot, pool)
    }

    static func message<Payload: Codable & Sendable>(_ type: MessageType, _ data: Payload) throws -> IncomingMessage {
        let envelope = Envelope(type: type, correlationId: "c", causationId: nil, data: data)
        return IncomingMessage(id: envelope.id, type: type, version: 1, body: try EnvelopeCodec.encode(envelope))
    }
}
