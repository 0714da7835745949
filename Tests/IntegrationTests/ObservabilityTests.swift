import AMQP
import DepotModel
import Foundation
import Messaging
import Postgres
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("Observability and shutdown", .serialized)
struct ObservabilityTests {
    static let components = ["orders", "inventory", "payments", "projector"]

    @Test func sigtermDuringLoadLosesAndDoublesNothingAndExitsZero() async throws {
        let depot = try await IsolatedDepot.make(["DEPOT_PAYMENT_TIMEOUT": "120s"])
        var running: [String: Process] = [:]
        for component in Self.components { running[component] = try depot.start(component) }
        try await depot.waitUntilConsuming(Self.components.map { "depot.\($0)" })
        let client = try await SagaClient(depot)
        let skus = (1...4).map { "term-\($0)" }
        try await client.createProducts(Dictionary(uniqueKeysWithValues: skus.map { ($0, 200) }))
        async let orders = client.placeMixedOrders(300, skus: skus, concurrency: 2, pause: .milliseconds(15))
        var exits: [String: Int32] = [:]
        for component in Self.components {
            try await Task.sleep(for: .milliseconds(500))
            let process = running[component]!
            kill(process.processIdentifier, SIGTERM)
            while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
            exits[component] = process.terminationStatus
            running[component] = try depot.start(component, label: "\(component)-after-term")
        }
        let placed = try await orders
        #expect(exits == ["orders": 0, "inventory": 0, "payments": 0, "projector": 0])
        #expect(try await client.waitUntilAllFinal(placed, timeout: .seconds(120)))
        let violations = try await client.settledViolations(expectedOrders: placed.count)
        #expect(violations == [], "logs: \(depot.logDirectory.path)")
        await client.close()
        await depot.tearDown()
    }

    @Test func workersServeHealthReadinessAndMetricsOnTheAdminPort() async throws {
        let port = TestEnvironment.freePort()
        let projectorPort = TestEnvironment.freePort()
        let depot = try await IsolatedDepot.make(["DEPOT_ADMIN_PORT": "\(port)"])
        try depot.start("orders")
        try depot.start(["projector"], settings: ["DEPOT_ADMIN_PORT": "\(projectorPort)"])
        try await depot.waitUntilConsuming(["depot.orders", "depot.projector"])
        func get(_ path: String, port: Int = port) async throws -> (Int, String) {
            let reply = try await Curl.request("GET", "http://127.0.0.1:\(port)\(path)")
            return (reply.status, String(decoding: reply.body, as: UTF8.self))
        }
        #expect(try await get("/healthz").0 == 200)
        let ready = try await get("/readyz")
        #expect(ready.0 == 200 && ready.1.contains(#""broker":"ok""#))
        let client = try await SagaClient(depot)
        try await client.amqp.publish(
            OutgoingMessage("garbage", properties: .persistentJSON(messageId: "m-1")), exchange: "",
            routingKey: "depot.orders")
        let counted = try await eventually {
            try await get("/metrics").1.contains(
                #"depot_messages_consumed_total{queue="depot.orders",outcome="dead_lettered"} 1"#)
        }
        #expect(counted)
        // Sampled gauges: the outbox backlog, and the projector's position and lag once an event is in.
        let sampled = try await eventually {
            try await get("/metrics").1.contains(#"depot_outbox_backlog{outbox="orders"} 0.0"#)
        }
        #expect(sampled)
        try await client.send(
            .productCreated, correlationId: "gauge",
            ProductCreated(sku: "gauge", name: "Gauge", priceCents: 1, stock: 1))
        let projected = try await eventually(timeout: .seconds(20)) {
            let metrics = try await get("/metrics", port: projectorPort).1
            return metrics.contains(#"depot_projection_position{projection="products"} 1.0"#)
                && metrics.contains(#"depot_projection_lag_events{projection="products"} 0.0"#)
                && metrics.contains("depot_projection_delay_seconds_count 1")
        }
        if !projected { Issue.record("projector metrics: \(try await get("/metrics", port: projectorPort).1)") }
        await client.close()
        await depot.tearDown()
    }

    @Test func theTraceOfAPostIsOnTheCommandAndEveryEventOfItsOrder() async throws {
        let edge = try await EdgeClient.start()
        let admin = try await EdgeClient.admin()
        _ = try await edge.send(
            "POST", "/v1/products", token: admin, json: #"{"sku":"tr","name":"T","price_cents":5,"stock":5}"#,
            headers: ["Prefer": "wait=5"])
        let amqp = try await edge.depot.connect()
        let tap = "tap.commands"
        try await amqp.declareQueue(tap, durable: false, autoDelete: true)
        try await amqp.bindQueue(tap, exchange: Exchanges.commands, routingKey: MessageType.orderPlace.rawValue)
        let traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
        let placed = try await edge.send(
            "POST", "/v1/orders", token: try await EdgeClient.token(),
            json: #"{"lines":[{"sku":"tr","quantity":1}],"payment":{"token":"tok_ok"}}"#,
            headers: [
                "Idempotency-Key": "trace", "Prefer": "wait=5", "traceparent": "00-\(traceId)-00f067aa0ba902b7-01",
            ])
        #expect(placed.status == 201)
        let consumer = try await amqp.consume(queue: tap)
        for try await delivery in consumer {
            delivery.ack()
            #expect(delivery.properties.headers[MessageHeader.traceparent]?.stringValue?.contains(traceId) == true)
            break
        }
        let id = try #require(placed.json["id"] as? String)
        let pool = try edge.depot.pool(maxConnections: 1)
        let traces = try await pool.withConnection { connection in
            try await connection.query(
                "SELECT type, traceparent FROM eventlog.events WHERE correlation_id = \(id) ORDER BY position"
            ).map {
                (try $0.decode(0, as: String.self), try $0.decode(1, as: String?.self))
            }
        }
        #expect(traces.count == 5)
        for (type, traceparent) in traces {
            #expect(traceparent?.contains(traceId) == true, "\(type): \(traceparent ?? "none")")
        }
        await pool.shutdown()
        await amqp.close()
        await edge.depot.tearDown()
    }
}
