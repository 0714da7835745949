import AMQP
import DepotModel
import Foundation
import Messaging
import Postgres
import Testing

/// The order saga end to end, each test on its own vhost and database with a real `depot all`.
@Suite("Order saga", .serialized)
struct SagaTests {
    /// Runs `body` against a fresh Depot (`depot all` with `settings`), then tears it down.
    func withDepot(_ settings: [String: String] = [:], _ body: (SagaClient) async throws -> Void) async throws {
        let depot = try await IsolatedDepot.make(settings)
        do {
            try depot.start("all")
            try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
            let client = try await SagaClient(depot)
            do {
                try await body(client)
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        } catch {
            Issue.record("logs: \(depot.logDirectory.path)")
            await depot.tearDown()
            throw error
        }
        await depot.tearDown()
    }

    @Test func happyPathConfirmsAndMovesStockToSold() async throws {
        try await withDepot { client in
            // A queue of our own on depot.events sees every event, in causal order per order.
            let tap = "tap.\(UUID().uuidString.prefix(8))"
            try await client.amqp.declareQueue(tap, durable: false, autoDelete: true)
            try await client.amqp.bindQueue(tap, exchange: Exchanges.events, routingKey: "#")
            let consumer = try await client.amqp.consume(queue: tap)

            try await client.createProducts(["apple": 10, "pear": 5], priceCents: 250)
            let order = try await client.placeOrder(["apple": 2, "pear": 1])
            #expect(try await client.finalStatus(order) == "confirmed")

            #expect(
                try await client.stock("apple", settlingAt: .init(available: 8, reserved: 0, sold: 2))
                    == .init(available: 8, reserved: 0, sold: 2))
            #expect(
                try await client.stock("pear", settlingAt: .init(available: 4, reserved: 0, sold: 1))
                    == .init(available: 4, reserved: 0, sold: 1))
            let projected = try await eventually {
                try await client.projectedStock("apple") == .init(available: 8, reserved: 0, sold: 2)
            }
            #expect(projected)
            let expected = [
                "order.placed", "stock.reserved", "payment.requested", "payment.settled", "order.confirmed",
            ]
            #expect(try await client.loggedEvents(order) == expected)

            var seen: [String] = []
            for try await delivery in consumer {
                delivery.ack()
                #expect(delivery.properties.contentType == "application/json")
                #expect(delivery.properties.deliveryMode == .persistent)
                #expect(delivery.properties.type == delivery.routingKey)
                #expect(delivery.properties.messageId != nil)
                if delivery.properties.correlationId == order.canonicalText {
                    #expect(delivery.properties.headers[MessageHeader.causationId] != nil)
                    seen.append(delivery.routingKey)
                }
                if seen.count == expected.count { break }
            }
            #expect(seen == expected)

            let view = try await client.pool.withConnection { connection in
                try await connection.query(
                    "SELECT total_cents, payment_status, payment_reference, version FROM projections.orders WHERE id = \(order)"
                ).first!
            }
            #expect(try view.decode(0, as: Int.self) == 750)
            #expect(try view.decode(1, as: String.self) == "settled")
            #expect(try view.decode(2, as: String?.self)?.hasPrefix("sim_") == true)
            #expect(try view.decode(3, as: Int.self) == 5)
            #expect(try await client.conservationViolations() == [])
        }
    }

    @Test func ordersThatCannotBeReservedAreRejectedAndReserveNothing() async throws {
        try await withDepot { client in
            try await client.createProducts(["few": 1, "other": 10, "gone": 10])
            try await client.send(.productDiscontinue, correlationId: "gone", DiscontinueProduct(sku: "gone"))
            _ = try await eventually {
                try await client.count("SELECT count(*) FROM inventory.products WHERE discontinued") == 1
            }
            let tooMany = try await client.placeOrder(["other": 1, "few": 2])
            let unknown = try await client.placeOrder(["other": 1, "nosuch": 1])
            let discontinued = try await client.placeOrder(["gone": 1])
            for order in [tooMany, unknown, discontinued] {
                #expect(try await client.finalStatus(order) == "rejected")
            }
            let reasons = try await client.pool.withConnection { connection in
                try await connection.query(
                    "SELECT id, reason FROM projections.orders WHERE status = 'rejected'"
                ).reduce(into: [UUID: String]()) { $0[try $1.decode(0)] = try $1.decode(1) }
            }
            #expect(reasons[tooMany]?.contains("not enough stock of few") == true)
            #expect(reasons[unknown]?.contains("unknown sku nosuch") == true)
            #expect(reasons[discontinued]?.contains("discontinued") == true)
            #expect(try await client.stock("other") == .init(available: 10, reserved: 0, sold: 0))
            #expect(try await client.stock("few") == .init(available: 1, reserved: 0, sold: 0))
            #expect(try await client.loggedEvents(tooMany) == ["order.placed", "stock.rejected", "order.rejected"])
        }
    }

    @Test func declinedPaymentCancelsAndReleasesStock() async throws {
        try await withDepot { client in
            try await client.createProducts(["widget": 5])
            let declined = try await client.placeOrder(["widget": 3], token: "tok_declined")
            let unknownToken = try await client.placeOrder(["widget": 1], token: "tok_whatever")
            #expect(try await client.finalStatus(declined) == "cancelled")
            #expect(try await client.finalStatus(unknownToken) == "cancelled")
            let released = try await eventually {
                try await client.projectedStock("widget") == .init(available: 5, reserved: 0, sold: 0)
            }
            #expect(released)
            #expect(try await client.stock("widget") == .init(available: 5, reserved: 0, sold: 0))
            #expect(
                try await client.loggedEvents(declined) == [
                    "order.placed", "stock.reserved", "payment.requested", "payment.declined", "order.cancelled",
                    "stock.released",
                ])
            #expect(try await client.conservationViolations() == [])
        }
    }

    @Test func flakyPaymentIsRetriedUntilItSettles() async throws {
        try await withDepot { client in
            try await client.createProducts(["gadget": 5])
            let order = try await client.placeOrder(["gadget": 1], token: "tok_flaky")
            #expect(try await client.finalStatus(order) == "confirmed")
            let calls = try await client.count(
                "SELECT calls FROM payments.simulated_provider WHERE idempotency_key = '\(order.canonicalText)'")
            #expect(calls == 3)
            #expect(
                try await client.stock("gadget", settlingAt: .init(available: 4, reserved: 0, sold: 1))
                    == .init(available: 4, reserved: 0, sold: 1))
        }
    }

    @Test func cancellingAReservedOrderReleasesStockAndRefundsALateCharge() async throws {
        try await withDepot { client in
            try await client.createProducts(["slowpoke": 4])
            let order = try await client.placeOrder(["slowpoke": 2], token: "tok_slow")
            // Waits on the orders service's own state, not the projection: the cancel must be
            // queued before the slow charge settles, 2 s after the reservation.
            let reserved = try await eventually {
                try await client.count(
                    "SELECT count(*) FROM orders.orders WHERE id = '\(order)' AND status = 'reserved'")
                    == 1
            }
            #expect(reserved)
            try await client.cancel(order)
            #expect(try await client.finalStatus(order) == "cancelled")
            let released = try await eventually {
                try await client.stock("slowpoke") == .init(available: 4, reserved: 0, sold: 0)
            }
            #expect(released)
            // The slow charge answered after the cancel: it is refunded, not kept.
            let refunded = try await eventually(timeout: .seconds(15)) {
                try await client.count("SELECT count(*) FROM payments.charges WHERE status IN ('refunded', 'void')")
                    == 1
            }
            #expect(refunded)
            // A cancel of a final order changes nothing.
            let lateCancel = try await client.send(
                .orderCancel, correlationId: order.canonicalText, CancelOrder(orderId: order))
            // Handled once it is in orders' inbox (committed with whatever it changed).
            #expect(
                try await eventually {
                    try await client.count(
                        "SELECT count(*) FROM orders.inbox WHERE message_id = '\(lateCancel.canonicalText)'") == 1
                })
            #expect(try await client.loggedEvents(order).filter { $0 == "order.cancelled" }.count == 1)
            #expect(try await client.conservationViolations() == [])
        }
    }

    @Test func cancellingAPendingOrderReservesNothing() async throws {
        try await withDepot { client in
            try await client.createProducts(["thing": 3])
            // The cancel may reach inventory before or after the order: either way nothing stays reserved.
            var orders: [UUID] = []
            for _ in 0..<10 {
                let order = try await client.placeOrder(["thing": 1], token: "tok_slow")
                try await client.cancel(order)
                orders.append(order)
            }
            // Each ends cancelled, or rejected when the slow payments of others still hold the stock.
            for order in orders { #expect(["cancelled", "rejected"].contains(try await client.finalStatus(order))) }
            let settled = try await eventually(timeout: .seconds(30)) {
                try await client.stock("thing") == .init(available: 3, reserved: 0, sold: 0)
            }
            #expect(settled)
            #expect(try await client.conservationViolations() == [])
        }
    }

    @Test func paymentThatNeverAnswersInTimeCancelsTheOrder() async throws {
        try await withDepot(["DEPOT_PAYMENT_TIMEOUT": "1s"]) { client in
            try await client.createProducts(["late": 2])
            let order = try await client.placeOrder(["late": 1], token: "tok_slow")
            #expect(try await client.finalStatus(order) == "cancelled")
            let reason = try await client.pool.withConnection { connection in
                try await connection.query("SELECT reason FROM projections.orders WHERE id = \(order)").first!.decode(
                    0, as: String.self)
            }
            #expect(reason == "payment timed out")
            let released = try await eventually {
                try await client.stock("late") == .init(available: 2, reserved: 0, sold: 0)
            }
            #expect(released)
            #expect(try await client.count("SELECT count(*) FROM orders.payment_deadlines") == 0)
        }
    }

    @Test func theSameMessageTwiceHasOneEffect() async throws {
        try await withDepot { client in
            let createId = UUID()
            for _ in 0..<2 {
                try await client.send(
                    .productCreate, correlationId: "twice",
                    CreateProduct(sku: "twice", name: "Twice", priceCents: 100, stock: 10), id: createId)
            }
            let adjustId = UUID()
            for _ in 0..<2 {
                try await client.send(
                    .stockAdjust, correlationId: "twice", AdjustStock(sku: "twice", delta: 5), id: adjustId)
            }
            let adjusted = try await eventually { try await client.stock("twice").available == 15 }
            #expect(adjusted)

            let orderId = UUID()
            let placeId = UUID()
            let place = PlaceOrder(
                orderId: orderId, customerId: "c", lines: [.init(sku: "twice", quantity: 2)],
                payment: .init(token: "tok_ok"))
            for _ in 0..<2 {
                try await client.send(.orderPlace, correlationId: orderId.canonicalText, place, id: placeId)
            }
            // The same order under a second message id (a client retry) is still one order.
            try await client.send(.orderPlace, correlationId: orderId.canonicalText, place)
            #expect(try await client.finalStatus(orderId) == "confirmed")

            // An event delivered again: inventory must not reserve twice, the log must not grow.
            let placed = try await client.pool.withConnection { connection in
                try await connection.query(
                    "SELECT body FROM eventlog.events WHERE correlation_id = \(orderId.canonicalText) AND type = 'order.placed'"
                ).first!.decode(0, as: String.self)
            }
            let envelope = try EnvelopeCodec.decode(Array(placed.utf8), as: OrderPlaced.self)
            try await client.publisher.publish(envelope, timeout: .seconds(5))
            try await Task.sleep(for: .seconds(1))

            #expect(
                try await client.stock("twice", settlingAt: .init(available: 13, reserved: 0, sold: 2))
                    == .init(available: 13, reserved: 0, sold: 2))
            #expect(try await client.count("SELECT count(*) FROM eventlog.events WHERE type = 'product.created'") == 1)
            #expect(try await client.count("SELECT count(*) FROM eventlog.events WHERE type = 'stock.adjusted'") == 1)
            #expect(
                try await client.loggedEvents(orderId) == [
                    "order.placed", "stock.reserved", "payment.requested", "payment.settled", "order.confirmed",
                ])
            #expect(try await client.conservationViolations() == [])
        }
    }

    @Test func poisonMessagesAreDeadLetteredWithAReasonAndTheConsumerGoesOn() async throws {
        try await withDepot { client in
            let poisons: [(queue: String, body: String, reason: String)] = [
                ("depot.orders", "this is not json", "malformed"),
                (
                    "depot.inventory",
                    #"{"id":"6f1c3f8e-9a53-4a55-9d0e-0d6a1f0c2b11","type":"order.exploded","version":1}"#,
                    "unknown_type"
                ),
                (
                    "depot.payments",
                    #"{"id":"7f1c3f8e-9a53-4a55-9d0e-0d6a1f0c2b11","type":"payment.requested","version":9}"#,
                    "unsupported_version"
                ),
                (
                    "depot.projector",
                    #"{"id":"8f1c3f8e-9a53-4a55-9d0e-0d6a1f0c2b11","type":"order.placed","version":1,"occurred_at":"2026-01-01T00:00:00Z","correlation_id":"x","data":{"order_id":42}}"#,
                    "invalid_data"
                ),
                (
                    "depot.orders",
                    #"{"id":"9f1c3f8e-9a53-4a55-9d0e-0d6a1f0c2b11","type":"order.place","version":1,"occurred_at":"2026-01-01T00:00:00Z","correlation_id":"x","data":{"lines":"many"}}"#,
                    "invalid_data"
                ),
            ]
            for poison in poisons {
                try await client.amqp.publish(
                    OutgoingMessage(poison.body, properties: .persistentJSON(messageId: UUID().uuidString)),
                    exchange: "", routingKey: poison.queue)
            }
            for queue in Set(poisons.map(\.queue)) {
                let expected = poisons.filter { $0.queue == queue }
                let arrived = try await eventually(timeout: .seconds(20)) {
                    try await client.amqp.inspectQueue("\(queue).dead").messageCount >= expected.count
                }
                #expect(arrived, "\(queue).dead did not get \(expected.count) message(s)")
                guard arrived else { continue }
                let dead = try await client.amqp.consume(queue: "\(queue).dead")
                var reasons: [String] = []
                for try await delivery in dead {
                    delivery.ack()
                    let headers = delivery.properties.headers
                    reasons.append(headers[MessageHeader.error]?.stringValue ?? "")
                    #expect(headers[MessageHeader.originalQueue]?.stringValue == queue)
                    #expect(headers[MessageHeader.originalRoutingKey]?.stringValue == queue)
                    #expect(headers[MessageHeader.attempts]?.integerValue != nil)
                    if reasons.count == expected.count { break }
                }
                await dead.cancel()
                for poison in expected {
                    #expect(
                        reasons.contains { $0.hasPrefix(poison.reason) }, "\(queue): \(reasons) lacks \(poison.reason)")
                }
            }
            // Every consumer is still there and the next good order goes through.
            try await client.createProducts(["after": 1])
            let order = try await client.placeOrder(["after": 1])
            #expect(try await client.finalStatus(order) == "confirmed")
        }
    }

    @Test func twoHundredOrdersForFiftyUnitsNeverOversell() async throws {
        try await withDepot { client in
            try await client.createProducts(["scarce": 50])
            let orders = try await withThrowingTaskGroup(of: UUID.self) { group in
                for _ in 0..<200 { group.addTask { try await client.placeOrder(["scarce": 1]) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var statuses: [String: Int] = [:]
            for order in orders { statuses[try await client.finalStatus(order) ?? "not final", default: 0] += 1 }
            #expect(statuses == ["confirmed": 50, "rejected": 150])
            #expect(
                try await client.stock("scarce", settlingAt: .init(available: 0, reserved: 0, sold: 50))
                    == .init(available: 0, reserved: 0, sold: 50))
            let projected = try await eventually {
                try await client.projectedStock("scarce") == .init(available: 0, reserved: 0, sold: 50)
            }
            #expect(projected)
            #expect(try await client.conservationViolations() == [])
        }
    }

    @Test func stockAdjustmentsNeverTakeAvailableBelowZero() async throws {
        try await withDepot { client in
            try await client.createProducts(["bolt": 5])
            try await client.send(.stockAdjust, correlationId: "bolt", AdjustStock(sku: "bolt", delta: 10))
            try await client.send(.stockAdjust, correlationId: "bolt", AdjustStock(sku: "bolt", delta: -100))
            try await client.send(.stockAdjust, correlationId: "bolt", AdjustStock(sku: "bolt", delta: -3))
            try await client.send(.productUpdate, correlationId: "bolt", UpdateProduct(sku: "bolt", priceCents: 999))
            let done = try await eventually {
                try await client.count("SELECT count(*) FROM eventlog.events WHERE correlation_id = 'bolt'") == 5
            }
            #expect(done)
            #expect(try await client.stock("bolt") == .init(available: 12, reserved: 0, sold: 0))
            #expect(
                try await client.count("SELECT count(*) FROM eventlog.events WHERE type = 'stock.adjustment_rejected'")
                    == 1)
            #expect(try await client.projectedStock("bolt") == .init(available: 12, reserved: 0, sold: 0))
            #expect(try await client.count("SELECT price_cents FROM projections.products WHERE sku = 'bolt'") == 999)
            #expect(try await client.conservationViolations() == [])
        }
    }
}

@Suite("Topology")
struct TopologyTests {
    @Test("depot migrate --topology declares every queue, as quorum queues when asked, and twice is fine")
    func migrateDeclaresTopology() async throws {
        let depot = try await IsolatedDepot.make(["DEPOT_QUEUE_TYPE": "quorum"])
        for _ in 0..<2 {
            let process = try depot.start("migrate", "--topology")
            while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
            #expect(process.terminationStatus == 0, "logs: \(depot.logDirectory.path)")
        }
        let data = try await IsolatedDepot.management("GET", "/api/queues/\(depot.name)?columns=name,type,arguments")
        struct Queue: Decodable {
            var name: String
            var type: String
        }
        let queues = try JSONDecoder().decode([Queue].self, from: data)
        let types = Dictionary(uniqueKeysWithValues: queues.map { ($0.name, $0.type) })
        for queue in [
            "depot.orders", "depot.inventory", "depot.payments", "depot.projector", "depot.orders.dead",
            "depot.orders.retry.500ms",
        ] {
            #expect(types[queue] == "quorum", "\(queue): \(types[queue] ?? "missing")")
        }
        await depot.tearDown()
    }
}
