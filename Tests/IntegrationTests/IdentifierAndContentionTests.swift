import AMQP
import DepotModel
import Foundation
import Messaging
import Postgres
import Testing

/// Issue #9's first and last parts where the bytes leave the process: one spelling of every id
/// (on the broker, over HTTP), and hot products that do not deadlock.
@Suite("Ids and contention")
struct IdentifierAndContentionTests {
    static func isLowercaseUUID(_ text: String?) -> Bool {
        guard let text, UUID(canonicalText: text) != nil else { return false }
        return text == text.lowercased()
    }

    @Test func everyIdOnTheBrokerAndOverHTTPIsLowercaseAndTheyMatch() async throws {
        let edge = try await EdgeClient.start()
        defer { Task { await edge.depot.tearDown() } }
        let amqp = try await edge.depot.connect()
        let tap = "tap.\(UUID().canonicalText.prefix(8))"
        try await amqp.declareQueue(tap, durable: false, autoDelete: true)
        try await amqp.bindQueue(tap, exchange: Exchanges.events, routingKey: "#")
        let consumer = try await amqp.consume(queue: tap)

        let admin = try await EdgeClient.admin()
        let customer = try await EdgeClient.token()
        #expect(
            try await edge.send(
                "POST", "/v1/products", token: admin, json: #"{"sku":"id-1","name":"Id","price_cents":5,"stock":5}"#,
                headers: ["Prefer": "wait=5"]
            ).status == 201)
        let placed = try await edge.send(
            "POST", "/v1/orders", token: customer,
            json: #"{"lines":[{"sku":"id-1","quantity":1}],"payment":{"token":"tok_ok"}}"#,
            headers: ["Idempotency-Key": "ids-1", "Prefer": "wait=10"])
        #expect(placed.status == 201, "\(placed.text)")
        let orderId = try #require(placed.json["id"] as? String)
        #expect(Self.isLowercaseUUID(orderId))
        #expect(placed.header("Location") == "/v1/orders/\(orderId)")

        // On the broker: message_id, x-causation-id, and the body's id, causation_id, order_id.
        var onBroker: [String] = []
        for try await delivery in consumer {
            delivery.ack()
            guard delivery.properties.correlationId == orderId else { continue }
            let body = try #require(try JSONSerialization.jsonObject(with: Data(delivery.body)) as? [String: Any])
            let messageId = delivery.properties.messageId
            #expect(Self.isLowercaseUUID(messageId), "message_id \(messageId ?? "-")")
            #expect(
                body["id"] as? String == messageId,
                "\(delivery.routingKey): body id \(body["id"] ?? "-") vs message_id \(messageId ?? "-")")
            let causationHeader = delivery.properties.headers[MessageHeader.causationId]?.stringValue
            #expect(Self.isLowercaseUUID(causationHeader))
            #expect(body["causation_id"] as? String == causationHeader)
            #expect(body["correlation_id"] as? String == orderId)
            let data = try #require(body["data"] as? [String: Any])
            #expect(
                data["order_id"] as? String == orderId, "\(delivery.routingKey): order_id \(data["order_id"] ?? "-")")
            onBroker.append(try #require(messageId))
            if delivery.routingKey == "order.confirmed" { break }
        }
        await amqp.close()

        // The events endpoint lists the same ids as the broker carried, in the same spelling.
        let events = try await edge.send("GET", "/v1/orders/\(orderId)/events", token: customer)
        #expect(events.status == 200)
        let listed = (events.json["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(
            Set(listed) == Set(onBroker) && listed.count == onBroker.count, "endpoint \(listed) vs broker \(onBroker)")
        for item in events.json["items"] as? [[String: Any]] ?? [] {
            if let causation = item["causation_id"] as? String { #expect(Self.isLowercaseUUID(causation)) }
        }

        // Any spelling of the id in a URL names the same order.
        let mixed = String(
            orderId.enumerated().map { $0.offset.isMultiple(of: 2) ? Character($0.element.uppercased()) : $0.element })
        for spelling in [orderId.uppercased(), mixed] {
            let got = try await edge.send("GET", "/v1/orders/\(spelling)", token: customer)
            #expect(got.status == 200, "GET /v1/orders/\(spelling): \(got.status)")
            #expect(got.json["id"] as? String == orderId)
            #expect(try await edge.send("GET", "/v1/orders/\(spelling)/events", token: customer).status == 200)
        }
        // A listing's cursor and items carry lowercase ids too.
        let page = try await edge.send("GET", "/v1/orders?limit=1", token: customer)
        #expect((page.json["items"] as? [[String: Any]])?.first?["id"] as? String == orderId)
    }

    /// Many multi-line orders over three products, lines in different orders, confirmations and
    /// cancellations flowing together: PostgreSQL reports no deadlock and no message is retried.
    @Test func hotProductsDoNotDeadlock() async throws {
        let depot = try await IsolatedDepot.make(["DEPOT_RATE_LIMIT": "0"])
        defer { Task { await depot.tearDown() } }
        try depot.start("all")
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        let skus = ["hot-a", "hot-b", "hot-c"]
        try await client.createProducts(Dictionary(uniqueKeysWithValues: skus.map { ($0, 100_000) }))

        let count = 300
        let orders = try await withThrowingTaskGroup(of: UUID.self) { group in
            var placed: [UUID] = []
            for index in 0..<count {
                if index >= 32 { placed.append(try await group.next()!) }
                group.addTask {
                    // 2 or 3 lines, starting at a different product each time.
                    var lines: [String: Int] = [:]
                    for offset in 0..<(2 + index % 2) {
                        lines[skus[(index + offset * (index % 2 == 0 ? 1 : 2)) % 3]] = 1 + index % 3
                    }
                    let order = try await client.placeOrder(lines)
                    if index % 3 == 0 {
                        // Cancelled once orders knows it (a cancel that overtakes its order is retried by design),
                        // so stock is released while other orders' stock is sold.
                        _ = try await eventually { try await client.projectedStatus(order) != nil }
                        try await client.cancel(order)
                    }
                    return order
                }
            }
            for try await order in group { placed.append(order) }
            return placed
        }
        #expect(try await client.waitUntilAllFinal(orders, timeout: .seconds(120)))
        #expect(try await client.settledViolations(expectedOrders: count) == [])

        // The server's own count of deadlocks in this database, once its statistics are flushed.
        try await Task.sleep(for: .seconds(2))
        let deadlocks = try await client.count(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        #expect(deadlocks == 0, "PostgreSQL detected \(deadlocks) deadlocks; logs in \(depot.logDirectory.path)")
        let metrics = try await Curl.request(
            "GET", "http://127.0.0.1:\(depot.environment["DEPOT_HTTP_PORT"]!)/metrics", headers: [:], body: nil)
        let retried = String(decoding: metrics.body, as: UTF8.self).split(separator: "\n")
            .filter {
                $0.hasPrefix("depot_messages_consumed_total") && $0.contains("outcome=\"retried\"")
                    && !$0.hasSuffix(" 0")
            }
        #expect(retried.isEmpty, "messages retried: \(retried)")
        await client.close()
    }
}
