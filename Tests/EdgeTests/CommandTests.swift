import DepotModel
import Foundation
import HTTPTypes
import Postgres
import Projector
import Prometheus
import Testing

@testable import Edge

/// Commands (docs/interface.md §3.4, §3.5): 202 after the confirm, `Prefer: wait`, idempotency
/// keys, and 503 — never 500 — when the broker or the database is away.
@Suite("Edge router: commands")
struct CommandTests {
    @Test("a command is 202 with its id and Location once confirmed, published with its type, key and trace")
    func accepted() async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        try await edge.test { client in
            let created = try await client.send(
                .post, "/v1/products", token: admin, json: #"{"sku":"mug","name":"Mug","price_cents":1200,"stock":10}"#,
                headers: ["traceparent": trace])
            #expect(created.status == 202)
            #expect(created.header("Location") == "/v1/products/mug")
            #expect(created.json["status"] as? String == "accepted")
            let published = try #require(edge.publisher.published.first)
            #expect(created.json["id"] as? String == published.json["id"] as? String)
            #expect(
                published.type == .productCreate && published.correlationId == "mug" && published.traceparent == trace)
            #expect((published.json["data"] as? [String: Any])?["price_cents"] as? Int == 1200)
            // Without a valid traceparent the edge starts a trace.
            edge.projections.put(ProductView.sample())
            _ = try await client.send(.delete, "/v1/products/mug", token: admin, headers: ["traceparent": "garbage"])
            let started = try #require(edge.publisher.published.last?.traceparent)
            #expect(EdgeRoutes.isTraceparent(started) && started != "garbage")
        }
        let metrics = edge.metrics.emitToString()
        #expect(metrics.contains(#"depot_edge_commands_total{type="product.create",outcome="confirmed"} 1"#))
        #expect(metrics.contains(#"depot_edge_confirm_seconds_count{type="product.create"} 1"#))
    }

    @Test("existence checks read the projection: 404 for an unknown sku, 409 for a known one or an uncovered write-off")
    func existence() async throws {
        let edge = try await EdgeHarness()
        edge.projections.put(ProductView.sample(available: 3))
        let admin = try await edge.admin()
        try await edge.test { client in
            #expect(
                try await client.send(
                    .post, "/v1/products", token: admin, json: #"{"sku":"mug","name":"A","price_cents":1,"stock":1}"#
                ).status == 409)
            #expect(
                try await client.send(.patch, "/v1/products/none", token: admin, json: #"{"name":"x"}"#).status == 404)
            #expect(try await client.send(.delete, "/v1/products/none", token: admin).status == 404)
            #expect(
                try await client.send(.post, "/v1/products/none/stock", token: admin, json: #"{"delta":1}"#).status
                    == 404)
            let writeOff = try await client.send(.post, "/v1/products/mug/stock", token: admin, json: #"{"delta":-4}"#)
            #expect(writeOff.status == 409 && writeOff.isProblem)
            #expect(
                try await client.send(.post, "/v1/products/mug/stock", token: admin, json: #"{"delta":-3}"#).status
                    == 202)
        }
        #expect(edge.publisher.published.map(\.type) == [.stockAdjust])
    }

    @Test("Prefer: wait answers with the resource once a change notice shows the effect, else still 202")
    func preferWait() async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        try await edge.test { client in
            // The product appears while the request waits: woken by the projector's notice, 201.
            let waiting = Task {
                try await client.send(
                    .post, "/v1/products", token: admin,
                    json: #"{"sku":"mug","name":"Mug","price_cents":1200,"stock":10}"#, headers: ["Prefer": "wait=5"])
            }
            // Read once for the existence check, once when the wait began: now it sleeps on the notice.
            #expect(await until { edge.projections.reads(of: "mug") >= 2 })
            edge.projections.put(ProductView.sample())
            edge.waiters.changed(["mug"])
            let created = try await waiting.value
            #expect(created.status == 201)
            #expect(created.json["stock_available"] as? Int == 10)
            #expect(
                created.header("Location") == "/v1/products/mug" && created.header("Preference-Applied") == "wait=5")

            // The effect already shows when the wait begins: DELETE answers 200 with discontinued: true.
            edge.publisher.onPublish { message in
                guard message.type == .productDiscontinue,
                    let product = edge.projections.product(named: message.correlationId)
                else { return }
                var discontinued = product
                discontinued.discontinued = true
                discontinued.version += 1
                edge.projections.put(discontinued)
                edge.waiters.changed([message.correlationId])
            }
            let deleted = try await client.send(
                .delete, "/v1/products/mug", token: admin, headers: ["Prefer": "wait=3, respond-async"])
            #expect(deleted.status == 200 && deleted.json["discontinued"] as? Bool == true)
            #expect(deleted.header("Preference-Applied") == "wait=3")

            // No effect within N seconds (a PATCH nothing applies): 202, without Preference-Applied.
            let started = ContinuousClock.now
            let patched = try await client.send(
                .patch, "/v1/products/mug", token: admin, json: #"{"name":"Cup"}"#, headers: ["Prefer": "wait=1"])
            #expect(patched.status == 202 && patched.header("Preference-Applied") == nil)
            #expect(ContinuousClock.now - started >= .seconds(1))
            // wait=0 and preferences the edge does not know do not wait.
            #expect(
                try await client.send(
                    .patch, "/v1/products/mug", token: admin, json: #"{"name":"Cup"}"#, headers: ["Prefer": "wait=0"]
                ).status == 202)
            #expect(
                try await client.send(
                    .patch, "/v1/products/mug", token: admin, json: #"{"name":"Cup"}"#,
                    headers: ["Prefer": "handling=strict"]
                ).status == 202)
        }
    }

    @Test("Prefer: wait on an order answers once it is final; a database outage while waiting still answers 202")
    func preferWaitOrder() async throws {
        let edge = try await EdgeHarness()
        let alice = try await edge.token("alice")
        edge.publisher.onPublish { message in
            guard message.type == .orderPlace, let id = UUID(canonicalText: message.correlationId) else { return }
            edge.projections.put(OrderRow.sample(id: id, customer: "alice", status: .confirmed))
            edge.waiters.changed([message.correlationId])
        }
        let body = #"{"lines":[{"sku":"mug","quantity":2}],"payment":{"token":"tok_ok"}}"#
        try await edge.test { client in
            let placed = try await client.send(
                .post, "/v1/orders", token: alice, json: body, headers: ["Idempotency-Key": "k1", "Prefer": "wait=5"])
            #expect(placed.status == 201)
            #expect(placed.json["status"] as? String == "confirmed" && placed.json["customer_id"] as? String == "alice")
            #expect(placed.header("Location") == "/v1/orders/\(placed.json["id"] as? String ?? "")")

            edge.publisher.onPublish { _ in
                edge.projections.fail(with: PostgresError(.connectionFailed, message: "gone"))
            }
            let during = try await client.send(
                .post, "/v1/orders", token: alice, json: body, headers: ["Idempotency-Key": "k2", "Prefer": "wait=5"])
            #expect(during.status == 202)
        }
    }

    @Test(
        "the same Idempotency-Key and body name one order however often sent; another body is 409; another caller is another order"
    )
    func idempotency() async throws {
        let edge = try await EdgeHarness()
        let alice = try await edge.token("alice")
        let bob = try await edge.token("bob")
        let body = #"{"lines":[{"sku":"mug","quantity":1}],"payment":{"token":"tok_ok"}}"#
        try await edge.test { client in
            let replies = try await withThrowingTaskGroup(of: Client.Reply.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await client.send(
                            .post, "/v1/orders", token: alice, json: body, headers: ["Idempotency-Key": "same"])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == 202 })
            let ids = Set(replies.compactMap { $0.json["id"] as? String })
            #expect(ids.count == 1)
            // Every request sends the command with that order id: orders places it once.
            #expect(Set(edge.publisher.published.map(\.correlationId)) == ids)
            let reordered = try await client.send(
                .post, "/v1/orders", token: alice,
                json: #"{ "payment": {"token":"tok_ok"}, "lines":[{"quantity":1,"sku":"mug"}] }"#,
                headers: ["Idempotency-Key": "same"])
            #expect(reordered.json["id"] as? String == ids.first)
            let different = try await client.send(
                .post, "/v1/orders", token: alice,
                json: #"{"lines":[{"sku":"mug","quantity":2}],"payment":{"token":"tok_ok"}}"#,
                headers: ["Idempotency-Key": "same"])
            #expect(different.status == 409 && different.isProblem)
            let other = try await client.send(
                .post, "/v1/orders", token: bob, json: body, headers: ["Idempotency-Key": "same"])
            #expect(other.status == 202 && other.json["id"] as? String != ids.first)
        }
    }

    @Test(
        "without an Idempotency-Key an order needs no database: 202 while it is down, and each request is a new order")
    func orderWithoutKey() async throws {
        let edge = try await EdgeHarness()
        edge.idempotency.fail(with: PostgresError(.connectionFailed, message: "the database is down"))
        let alice = try await edge.token("alice")
        let body = #"{"lines":[{"sku":"mug","quantity":1}],"payment":{"token":"tok_ok"}}"#
        try await edge.test { client in
            let first = try await client.send(.post, "/v1/orders", token: alice, json: body)
            let second = try await client.send(.post, "/v1/orders", token: alice, json: body)
            #expect(first.status == 202 && second.status == 202)
            let ids = [first, second].compactMap { $0.json["id"] as? String }
            #expect(Set(ids).count == 2)
            #expect(edge.publisher.published.map(\.correlationId) == ids)
            let keyed = try await client.send(
                .post, "/v1/orders", token: alice, json: body, headers: ["Idempotency-Key": "k"])
            #expect(keyed.status == 503)
        }
    }

    @Test("cancel: 202 for an open order, 409 once final")
    func cancel() async throws {
        let edge = try await EdgeHarness()
        let open = OrderRow.sample(customer: "alice", status: .reserved)
        let done = OrderRow.sample(customer: "alice", status: .confirmed)
        edge.projections.put(open)
        edge.projections.put(done)
        let alice = try await edge.token("alice")
        try await edge.test { client in
            let cancelled = try await client.send(.post, "/v1/orders/\(open.id.canonicalText)/cancel", token: alice)
            #expect(cancelled.status == 202 && cancelled.header("Location") == "/v1/orders/\(open.id.canonicalText)")
            let conflict = try await client.send(.post, "/v1/orders/\(done.id.canonicalText)/cancel", token: alice)
            #expect(conflict.status == 409 && conflict.json["detail"] as? String == "the order is confirmed already")
        }
        #expect(edge.publisher.published.map(\.type) == [.orderCancel])
    }

    @Test(
        "the broker down is 503 with Retry-After 5, an unconfirmed command 503 with Retry-After 2; nothing is accepted")
    func brokerUnavailable() async throws {
        let edge = try await EdgeHarness(confirmTimeout: .milliseconds(100))
        let admin = try await edge.admin()
        let body = #"{"sku":"mug","name":"Mug","price_cents":1200,"stock":10}"#
        try await edge.test { client in
            edge.publisher.setConnected(false)
            let down = try await client.send(.post, "/v1/products", token: admin, json: body)
            #expect(down.status == 503 && down.header("Retry-After") == "5" && down.isProblem)
            let ready = try await client.send(.get, "/readyz")
            #expect(
                ready.status == 503 && ready.header("Retry-After") == "5"
                    && ready.json["broker"] as? String == "unreachable")
            edge.publisher.setConnected(true)
            edge.publisher.setConfirms(false)
            let unconfirmed = try await client.send(.post, "/v1/products", token: admin, json: body)
            #expect(unconfirmed.status == 503 && unconfirmed.header("Retry-After") == "2" && unconfirmed.isProblem)
            edge.publisher.setConfirms(true)
            #expect(try await client.send(.post, "/v1/products", token: admin, json: body).status == 202)
        }
        #expect(edge.publisher.published.count == 1)
        let metrics = edge.metrics.emitToString()
        #expect(metrics.contains(#"depot_edge_commands_total{type="product.create",outcome="broker_down"} 1"#))
        #expect(metrics.contains(#"depot_edge_commands_total{type="product.create",outcome="unconfirmed"} 1"#))
    }

    @Test(
        "the database away is 503 with Retry-After 2 on every route that reads or claims, never 500",
        arguments: [
            PostgresError(.connectionFailed, message: "connection refused"),
            PostgresError(.poolTimeout, message: "no free connection"),
            PostgresError(.server, code: .tooManyConnections, message: "too many clients already"),
            PostgresError(
                .server, code: .adminShutdown, message: "terminating connection due to administrator command"),
        ])
    func databaseUnavailable(error: PostgresError) async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        let order = UUID().canonicalText
        try await edge.test { client in
            edge.projections.fail(with: error)
            edge.idempotency.fail(with: error)
            let requests: [(String, String, String?, [String: String])] = [
                ("GET", "/v1/products", nil, [:]), ("GET", "/v1/products/mug", nil, [:]),
                ("GET", "/v1/orders", nil, [:]),
                ("GET", "/v1/orders/\(order)", nil, [:]), ("GET", "/v1/orders/\(order)/events", nil, [:]),
                ("POST", "/v1/orders/\(order)/cancel", nil, [:]),
                ("POST", "/v1/products", #"{"sku":"mug","name":"Mug","price_cents":1200,"stock":10}"#, [:]),
                ("PATCH", "/v1/products/mug", #"{"name":"Cup"}"#, [:]), ("DELETE", "/v1/products/mug", nil, [:]),
                ("POST", "/v1/products/mug/stock", #"{"delta":1}"#, [:]),
                (
                    "POST", "/v1/orders", #"{"lines":[{"sku":"mug","quantity":1}],"payment":{"token":"t"}}"#,
                    ["Idempotency-Key": "k"]
                ),
            ]
            for (method, uri, body, headers) in requests {
                let reply = try await client.send(.init(method)!, uri, token: admin, json: body, headers: headers)
                #expect(reply.status == 503, "\(method) \(uri): \(reply.status) \(reply.text)")
                #expect(reply.header("Retry-After") == "2" && reply.isProblem, "\(method) \(uri)")
            }
            let ready = try await client.send(.get, "/readyz")
            #expect(ready.status == 503 && ready.header("Retry-After") == "5")
            #expect(
                ready.json["database"] as? String == "unreachable"
                    && ready.json["read_database"] as? String == "unreachable")
            #expect(try await client.send(.get, "/healthz").status == 200)
            // Back: answered again, without anything restarted.
            edge.projections.fail(with: nil)
            edge.idempotency.fail(with: nil)
            #expect(try await client.send(.get, "/v1/products").status == 200)
            let ready2 = try await client.send(.get, "/readyz")
            #expect(
                ready2.status == 200
                    && ready2.text == #"{"broker":"ok","database":"ok","read_database":"ok","status":"ready"}"#)
        }
        #expect(edge.publisher.published.isEmpty)
    }
}
