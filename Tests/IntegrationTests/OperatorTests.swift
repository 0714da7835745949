import AMQP
import DepotModel
import Foundation
import Messaging
import Operations
import Postgres
import Testing

/// The operator CLI against a running Depot: replay, events.
@Suite("Operator commands", .serialized)
struct OperatorTests {
    static let skus = (1...6).map { "op-\($0)" }

    @Test func replayProjectionsRebuildsRowForRowWhileOrdersFlow() async throws {
        let depot = try await IsolatedDepot.make(["DEPOT_PAYMENT_TIMEOUT": "60s"])
        try depot.start("all")
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        try await client.createProducts(Dictionary(uniqueKeysWithValues: Self.skus.map { ($0, 600) }))
        let first = try await client.placeMixedOrders(1_500, skus: Self.skus)
        #expect(try await client.waitUntilAllFinal(first, timeout: .seconds(120)))

        // A rebuild aside equals the live projections.
        let clean = try await depot.run("replay", "projections", "--dry-run")
        #expect(clean.status == 0, "\(clean.output)")
        #expect(clean.output.contains("no differences"))

        // A tampered row is reported, with a sample, and the exit status says so.
        let victim = first[7]
        try await client.pool.withConnection {
            try await $0.execute("UPDATE projections.orders SET status = 'pending', version = 99 WHERE id = \(victim)")
        }
        let dirty = try await depot.run("replay", "projections", "--dry-run", "--projection", "orders")
        #expect(dirty.status == 1)
        #expect(dirty.output.contains("orders: 0 added, 0 removed, 1 different"), "\(dirty.output)")
        #expect(dirty.output.contains(victim.canonicalText))

        // The real rebuild runs while more orders flow, and switches over atomically.
        async let more = client.placeMixedOrders(500, skus: Self.skus, concurrency: 4, pause: .milliseconds(5))
        let rebuilt = try await depot.run("replay", "projections")
        #expect(rebuilt.status == 0, "\(rebuilt.output)")
        #expect(rebuilt.output.contains("events/s"))
        let second = try await more
        #expect(try await client.waitUntilAllFinal(first + second, timeout: .seconds(120)))
        #expect(try await eventually { try await client.projectedStatus(victim) != "pending" })
        let after = try await depot.run("replay", "projections", "--dry-run")
        #expect(after.status == 0, "\(after.output)")
        let violations = try await client.settledViolations(expectedOrders: first.count + second.count)
        #expect(violations == [], "logs: \(depot.logDirectory.path)")
        let products = try await depot.run("replay", "projections", "--projection", "products")
        #expect(products.status == 0, "\(products.output)")

        // A tail rebuild: only the rows touched from a position on, each from its whole history.
        let tampered = first[42]
        try await client.pool.withConnection {
            try await $0.execute("UPDATE projections.orders SET reason = 'tampered' WHERE id = \(tampered)")
        }
        let position = try await client.pool.withConnection { connection in
            try await connection.query(
                "SELECT max(position) FROM eventlog.events WHERE correlation_id = \(tampered.canonicalText)"
            ).first!.decode(0, as: Int.self)
        }
        let tailDry = try await depot.run("replay", "projections", "--from-position", "\(position)", "--dry-run")
        #expect(tailDry.status == 1 && tailDry.output.contains("1 different"), "\(tailDry.output)")
        let tail = try await depot.run("replay", "projections", "--from-position", "\(position)")
        #expect(tail.status == 0, "\(tail.output)")
        #expect(try await depot.run("replay", "projections", "--dry-run").status == 0)
        #expect(try await depot.run("replay", "projections", "--projection", "nonsense").status == 2)
        await client.close()
        await depot.tearDown()
    }

    /// Every rebuild works in the one aside schema: a second one at the same time is refused,
    /// not let in to drop the first one's tables.
    @Test func aSecondProjectionRebuildAtTheSameTimeIsRefused() async throws {
        let depot = try await IsolatedDepot.make()
        #expect(try await depot.run("migrate").status == 0)
        let pool = try depot.pool(maxConnections: 1)
        let refused = try await pool.withConnection { connection in
            // This session stands for a rebuild in progress.
            _ = try await connection.query("SELECT pg_advisory_lock(\(ProjectionRebuild.rebuildLockKey))")
            let refused = try await depot.run("replay", "projections", "--dry-run")
            _ = try await connection.query("SELECT pg_advisory_unlock(\(ProjectionRebuild.rebuildLockKey))")
            return refused
        }
        #expect(
            refused.status == 1 && refused.output.contains("another projection rebuild is running"), "\(refused.output)"
        )
        let alone = try await depot.run("replay", "projections", "--dry-run")
        #expect(alone.status == 0 && alone.output.contains("no differences"), "\(alone.output)")
        await pool.shutdown()
        await depot.tearDown()
    }

    @Test func replayPublishDeliversOneOrdersEventsToOneQueueInLogOrder() async throws {
        let depot = try await IsolatedDepot.make()
        try depot.start("all")
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        try await client.createProducts(["rp": 10])
        let order = try await client.placeOrder(["rp": 1])
        let other = try await client.placeOrder(["rp": 2], token: "tok_declined")
        _ = try await client.finalStatus(order)
        _ = try await client.finalStatus(other)
        let expected = try await client.loggedEvents(order)

        let queue = "replay-target"
        try await client.amqp.declareQueue(queue)
        let counted = try await depot.run(
            "replay", "publish", "--queue", queue, "--order", order.uuidString, "--dry-run")
        #expect(counted.output.contains("\(expected.count) events would be sent to \(queue)"), "\(counted.output)")
        let published = try await depot.run("replay", "publish", "--queue", queue, "--order", order.uuidString)
        #expect(published.status == 0, "\(published.output)")
        #expect(published.output.contains("inbox"))
        let consumer = try await client.amqp.consume(queue: queue)
        var received: [String] = []
        for try await delivery in consumer {
            delivery.ack()
            #expect(delivery.properties.correlationId == order.canonicalText)
            received.append(delivery.properties.type ?? "")
            if received.count == expected.count { break }
        }
        #expect(received == expected)
        #expect(try await client.amqp.inspectQueue(queue).messageCount == 0)
        // Nothing went to anyone else: the services did not see the events again.
        #expect(
            try await depot.run("replay", "publish", "--queue", "no-such-queue", "--order", order.uuidString).status
                == 1)

        // depot events: the log for people and for tools.
        let lines = try await depot.run("events", "--order", order.uuidString)
        #expect(lines.output.split(separator: "\n").filter { $0.contains(order.canonicalText) }.count == expected.count)
        let json = try await depot.run("events", "--type", "order.*", "--json")
        let document =
            try JSONSerialization.jsonObject(
                with: Data(json.output.split(separator: "\n").last { $0.hasPrefix("{") }!.utf8)) as? [String: Any]
        let types = (document?["items"] as? [[String: Any]])?.compactMap { $0["type"] as? String } ?? []
        #expect(Set(types) == ["order.placed", "order.confirmed", "order.cancelled"])
        await client.close()
        await depot.tearDown()
    }
}

@Suite("Dead letters", .serialized)
struct DeadLetterTests {
    @Test("a peek gives every message back before it answers: another connection counts them all at once")
    func aPeekLeavesTheQueueAsItWas() async throws {
        let amqp = try await TestEnvironment.amqp()
        let observer = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("peek")
        try await amqp.declareQueue(queue, durable: true)
        for index in 0..<5 {
            try await amqp.publish(
                OutgoingMessage("m-\(index)", properties: .persistentJSON(messageId: "m-\(index)")), exchange: "",
                routingKey: queue)
        }
        var counts: [Int] = []
        for _ in 0..<1000 {
            let letters = try await DeadLetters(amqp: amqp).peek(queue, limit: 5)
            #expect(letters.map(\.messageId) == (0..<5).map { "m-\($0)" })
            counts.append(try await observer.inspectQueue(queue).messageCount)
        }
        #expect(counts.allSatisfy { $0 == 5 }, "counts right after a peek: \(Set(counts))")
        try await amqp.deleteQueue(queue)
        await amqp.close()
        await observer.close()
    }

    @Test func deadLettersAreListedShownRedrivenWithoutLossOrDoublesAndPurged() async throws {
        let depot = try await IsolatedDepot.make(["DEPOT_RETRY_DELAYS": "100ms"])
        try depot.start("all")
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        try await client.amqp.publish(
            OutgoingMessage("not json", properties: .persistentJSON(messageId: "poison-1")), exchange: "",
            routingKey: "depot.orders")
        // 200 restocks of a product that does not exist yet: retried once, then dead-lettered.
        for _ in 0..<200 {
            try await client.send(.stockAdjust, correlationId: "late", AdjustStock(sku: "late", delta: 1))
        }
        let dead = try await eventually(timeout: .seconds(30)) {
            let inventory = try await client.amqp.inspectQueue("depot.inventory.dead").messageCount
            let orders = try await client.amqp.inspectQueue("depot.orders.dead").messageCount
            return inventory == 200 && orders == 1
        }
        #expect(dead)

        let list = try await depot.run("dlq", "list", "--json")
        #expect(list.status == 0, "\(list.output)")
        let document =
            try JSONSerialization.jsonObject(
                with: Data(list.output.split(separator: "\n").last { $0.hasPrefix("{") }!.utf8)) as? [String: Any]
        let queues = (document?["queues"] as? [[String: Any]]) ?? []
        let inventory = queues.first { $0["queue"] as? String == "depot.inventory.dead" }
        #expect(inventory?["count"] as? Int == 200)
        #expect((inventory?["reasons"] as? [String: Int])?.values.reduce(0, +) == 200)
        #expect(queues.first { $0["queue"] as? String == "depot.orders.dead" }?["count"] as? Int == 1)

        let shown = try await depot.run("dlq", "show", "depot.orders.dead")
        #expect(shown.output.contains("malformed") && shown.output.contains("not json"), "\(shown.output)")
        #expect(try await client.amqp.inspectQueue("depot.orders.dead").messageCount == 1)  // still there

        // Fix the cause, then redrive; kill the first redrive midway and run it again.
        try await client.createProducts(["late": 0])
        let first = try depot.start(["dlq", "redrive", "depot.inventory.dead"], label: "redrive-killed")
        _ = try await eventually(timeout: .seconds(20)) {
            try await client.amqp.inspectQueue("depot.inventory.dead").messageCount < 150
        }
        await depot.kill(first)
        let second = try await depot.run("dlq", "redrive", "depot.inventory.dead")
        #expect(second.status == 0, "\(second.output)")
        let applied = try await eventually(timeout: .seconds(30)) { try await client.stock("late").available == 200 }
        #expect(applied)
        try await Task.sleep(for: .seconds(1))
        #expect(try await client.stock("late").available == 200)  // nothing doubled
        #expect(try await client.amqp.inspectQueue("depot.inventory.dead").messageCount == 0)

        #expect(try await depot.run("dlq", "purge", "depot.orders.dead", "--yes").status == 0)
        #expect(try await client.amqp.inspectQueue("depot.orders.dead").messageCount == 0)
        #expect(try await depot.run("dlq", "show", "no.such.dead").status == 1)
        await client.close()
        await depot.tearDown()
    }
}

@Suite("Status", .serialized)
struct StatusTests {
    func report(_ depot: IsolatedDepot) async throws -> (status: Int32, json: [String: Any]) {
        let result = try await depot.run("status", "--json")
        let line = result.output.split(separator: "\n").last { $0.hasPrefix("{") } ?? "{}"
        return (result.status, (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:])
    }

    func queue(_ json: [String: Any], _ name: String) -> [String: Any] {
        (json["queues"] as? [[String: Any]])?.first { $0["name"] as? String == name } ?? [:]
    }

    @Test func statusShowsAStoppedConsumerAndALaggingProjection() async throws {
        let depot = try await IsolatedDepot.make()
        var running: [String: Process] = [:]
        for component in ["orders", "inventory", "payments", "projector"] {
            running[component] = try depot.start(component)
        }
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        try await client.createProducts(["st": 100])
        _ = try await eventually { try await client.projectedStock("st") != nil }
        let healthy = try await report(depot)
        #expect(healthy.status == 0)
        #expect(healthy.json["health"] as? String == "ok")
        #expect(queue(healthy.json, "depot.orders")["consumers"] as? Int == 1)

        // Orders stopped: its queue has no consumer and grows.
        await depot.kill(running["orders"]!)
        for _ in 0..<5 { try await client.placeOrder(["st": 1]) }
        let stopped = try await report(depot)
        #expect(stopped.status == 1)
        #expect(stopped.json["health"] as? String == "failing")
        #expect(queue(stopped.json, "depot.orders")["consumers"] as? Int == 0)
        #expect(queue(stopped.json, "depot.orders")["depth"] as? Int == 5)
        #expect(queue(stopped.json, "depot.orders")["health"] as? String == "failing")

        // Projector stopped, orders back: events wait, the projections lag.
        await depot.kill(running["projector"]!)
        running["orders"] = try depot.start("orders", label: "orders-again")
        let lagging = try await eventually(timeout: .seconds(30)) {
            let json = try await report(depot).json
            let projection = (json["projections"] as? [[String: Any]])?.first { $0["name"] as? String == "orders" }
            return (projection?["lag"] as? Int ?? 0) >= 10 && projection?["health"] as? String == "failing"
        }
        #expect(lagging)
        // The projector back: the lag drains to zero.
        try depot.start("projector", label: "projector-again")
        let caughtUp = try await eventually(timeout: .seconds(30)) {
            let json = try await report(depot).json
            return (json["projections"] as? [[String: Any]])?.allSatisfy { $0["lag"] as? Int == 0 } ?? false
        }
        #expect(caughtUp)
        let text = try await depot.run("status")
        #expect(text.output.contains("PROJECTION") && text.output.contains("depot.orders"))
        await client.close()
        await depot.tearDown()
    }
}
