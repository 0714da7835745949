import Foundation
import Postgres
import Testing

/// The edge over real HTTP, in front of a real `depot all` (broker, database, services).
@Suite("Edge", .serialized)
struct EdgeTests {
    func withEdge(_ settings: [String: String] = [:], _ body: (EdgeClient) async throws -> Void) async throws {
        let edge = try await EdgeClient.start(settings)
        do {
            try await body(edge)
        } catch {
            Issue.record("logs: \(edge.depot.logDirectory.path)")
            await edge.depot.tearDown()
            throw error
        }
        await edge.depot.tearDown()
    }

    @Test func productRoutesAnswerAsTheContractSays() async throws {
        try await withEdge { edge in
            let admin = try await EdgeClient.admin()
            let created = try await edge.send(
                "POST", "/v1/products", token: admin, json: #"{"sku":"p-1","name":"One","price_cents":100,"stock":5}"#)
            #expect(created.status == 202)
            #expect(created.header("Location") == "/v1/products/p-1")
            #expect(created.json["status"] as? String == "accepted")
            #expect(UUID(uuidString: created.json["id"] as? String ?? "") != nil)
            let waited = try await edge.send(
                "POST", "/v1/products", token: admin, json: #"{"sku":"p-2","name":"Two","price_cents":200,"stock":7}"#,
                headers: ["Prefer": "wait=5"])
            #expect(waited.status == 201)
            #expect(waited.json["stock_available"] as? Int == 7)

            // Reads are open, with ETag / If-None-Match.
            let read = try await edge.send("GET", "/v1/products/p-2")
            #expect(read.status == 200)
            #expect(
                Set(read.json.keys) == [
                    "sku", "name", "price_cents", "stock_available", "stock_reserved", "discontinued", "version",
                    "updated_at",
                ])
            let etag = try #require(read.header("ETag"))
            #expect(try await edge.send("GET", "/v1/products/p-2", headers: ["If-None-Match": etag]).status == 304)
            #expect(try await edge.send("GET", "/v1/products/nope").status == 404)

            // Keyset pagination in sku order.
            _ = try await eventually { try await edge.send("GET", "/v1/products/p-1").status == 200 }
            let first = try await edge.send("GET", "/v1/products?limit=1")
            #expect((first.json["items"] as? [[String: Any]])?.first?["sku"] as? String == "p-1")
            let cursor = try #require(first.json["next"] as? String)
            let second = try await edge.send("GET", "/v1/products?limit=1&after=\(cursor)")
            #expect((second.json["items"] as? [[String: Any]])?.first?["sku"] as? String == "p-2")
            #expect(second.json["next"] is NSNull)
            #expect(try await edge.send("GET", "/v1/products?limit=0").status == 400)
            #expect(try await edge.send("GET", "/v1/products?after=garbage!").status == 400)

            // Changes: PATCH, stock, DELETE; 404 for an unknown sku; 409 for a write-off the catalog cannot cover.
            let patched = try await edge.send(
                "PATCH", "/v1/products/p-2", token: admin, json: #"{"price_cents":250}"#, headers: ["Prefer": "wait=5"])
            #expect(patched.status == 200)
            #expect(patched.json["price_cents"] as? Int == 250)
            #expect(
                try await edge.send("PATCH", "/v1/products/none", token: admin, json: #"{"name":"x"}"#).status == 404)
            #expect(
                try await edge.send("POST", "/v1/products/p-2/stock", token: admin, json: #"{"delta":-100}"#).status
                    == 409)
            let restocked = try await edge.send(
                "POST", "/v1/products/p-2/stock", token: admin, json: #"{"delta":3}"#, headers: ["Prefer": "wait=5"])
            #expect(restocked.json["stock_available"] as? Int == 10)
            // Reads come from a cache the projector's notices invalidate: the change shows.
            let fresh = try await eventually {
                (try await edge.send("GET", "/v1/products/p-2")).json["stock_available"] as? Int == 10
            }
            #expect(fresh)
            #expect(
                try await edge.send("POST", "/v1/products/none/stock", token: admin, json: #"{"delta":3}"#).status
                    == 404)
            let deleted = try await edge.send("DELETE", "/v1/products/p-1", token: admin, headers: ["Prefer": "wait=5"])
            #expect(deleted.json["discontinued"] as? Bool == true)
            #expect(try await edge.send("DELETE", "/v1/products/none", token: admin).status == 404)
            #expect(
                try await edge.send(
                    "POST", "/v1/products", token: admin,
                    json: #"{"sku":"p-2","name":"Again","price_cents":1,"stock":1}"#
                ).status == 409)
        }
    }

    @Test func badInputGetsAProblemNamingEachField() async throws {
        try await withEdge { edge in
            let admin = try await EdgeClient.admin()
            let invalid = try await edge.send(
                "POST", "/v1/products", token: admin,
                json: #"{"sku":"bad sku!","name":"","price_cents":-1,"stock":"many"}"#)
            #expect(invalid.status == 400)
            #expect(invalid.header("Content-Type") == "application/problem+json")
            #expect(Set(invalid.fields) == ["sku", "name", "price_cents", "stock"])
            #expect(invalid.json["title"] as? String != nil && invalid.json["status"] as? Int == 400)
            let unknown = try await edge.send(
                "POST", "/v1/products", token: admin,
                json: #"{"sku":"a","name":"A","price_cents":1,"stock":1,"colour":"red"}"#)
            #expect(unknown.status == 400)
            #expect(unknown.fields == ["colour"])
            let cases: [(String, Int)] = [
                ("{", 400), ("[]", 400), ("null", 400), (#"{"sku":"a","name":"A","price_cents":1e400,"stock":1}"#, 400),
                (#"{"sku":"a","name":"A","price_cents":99999999999999999999999,"stock":1}"#, 400),
                (#"{"sku":"a","name":"A","price_cents":1.5,"stock":1}"#, 400),
                (#"{"sku":1,"name":true,"price_cents":"1","stock":null}"#, 400),
                (String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000), 400),
            ]
            for (body, status) in cases {
                let reply = try await edge.send("POST", "/v1/products", token: admin, json: body)
                #expect(reply.status == status, "\(body.prefix(40)) → \(reply.status) \(reply.text.prefix(200))")
            }
            let brokenUTF8 = try await edge.send(
                "POST", "/v1/products", token: admin, body: Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]),
                headers: ["Content-Type": "application/json"])
            #expect(brokenUTF8.status == 400)
            #expect(
                try await edge.send(
                    "POST", "/v1/products", token: admin, body: Data("sku=a".utf8),
                    headers: ["Content-Type": "text/plain"]
                ).status == 415)
            let huge = try await edge.send(
                "POST", "/v1/products", token: admin,
                json: #"{"name":""# + String(repeating: "x", count: 70_000) + #""}"#)
            #expect(huge.status == 413)
            #expect(try await edge.send("GET", "/v1/nothing-here").status == 404)
            let wrongMethod = try await edge.send("PUT", "/v1/products/p-1")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("Allow") == "DELETE, GET, PATCH")
            let order = try await edge.send(
                "POST", "/v1/orders", token: admin,
                json: #"{"lines":[{"sku":"a","quantity":0},{"sku":"b c","quantity":1}],"payment":{}}"#,
                headers: ["Idempotency-Key": "k"])
            #expect(order.status == 400)
            #expect(Set(order.fields) == ["lines[0].quantity", "lines[1].sku", "payment.token"])
            #expect(
                try await edge.send("POST", "/v1/orders", token: admin, json: #"{"lines":[],"payment":{"token":"t"}}"#)
                    .status == 400)
        }
    }

    @Test func authenticationAndRoles() async throws {
        try await withEdge { edge in
            let body = #"{"sku":"auth-1","name":"A","price_cents":1,"stock":1}"#
            let rejected: [(String, String?)] = [
                ("no token", nil),
                (
                    "wrong signature",
                    try await EdgeClient.token(role: "admin", secret: String(repeating: "another-secret-", count: 5))
                ),
                ("alg none", try await EdgeClient.token(role: "admin", alg: "none")),
                ("HS512", try await EdgeClient.token(role: "admin", alg: "HS512")),
                ("expired", try await EdgeClient.token(role: "admin", expiresIn: -60)),
                ("no sub", try await EdgeClient.token(sub: nil, role: "admin")),
                ("no role", try await EdgeClient.token(role: nil)),
                ("unknown role", try await EdgeClient.token(role: "root")),
                ("garbage", "not.a.jwt"),
            ]
            for (name, token) in rejected {
                let reply = try await edge.send("POST", "/v1/products", token: token, json: body)
                #expect(reply.status == 401, "\(name): \(reply.status)")
                #expect(reply.header("Content-Type") == "application/problem+json")
            }
            let customer = try await EdgeClient.token(sub: "customer-a")
            #expect(try await edge.send("POST", "/v1/products", token: customer, json: body).status == 403)

            // Orders belong to the token's subject: another customer gets 404, an admin sees it.
            let admin = try await EdgeClient.admin()
            _ = try await edge.send(
                "POST", "/v1/products", token: admin, json: #"{"sku":"mine","name":"M","price_cents":10,"stock":5}"#,
                headers: ["Prefer": "wait=5"])
            // Now cached.
            #expect((try await edge.send("GET", "/v1/products/mine")).json["stock_available"] as? Int == 5)
            let placed = try await edge.send(
                "POST", "/v1/orders", token: customer,
                json: #"{"lines":[{"sku":"mine","quantity":1}],"payment":{"token":"tok_ok"}}"#,
                headers: ["Idempotency-Key": "a-1", "Prefer": "wait=5"])
            // The order moved the product's stock: its cached view was dropped too.
            let moved = try await eventually {
                (try await edge.send("GET", "/v1/products/mine")).json["stock_available"] as? Int == 4
            }
            #expect(moved)
            #expect(placed.status == 201)
            #expect(placed.json["status"] as? String == "confirmed")
            #expect(placed.json["customer_id"] as? String == "customer-a")
            let id = try #require(placed.json["id"] as? String)
            let other = try await EdgeClient.token(sub: "customer-b")
            #expect(try await edge.send("GET", "/v1/orders/\(id)", token: other).status == 404)
            #expect(try await edge.send("GET", "/v1/orders/\(id)/events", token: other).status == 404)
            #expect(try await edge.send("POST", "/v1/orders/\(id)/cancel", token: other).status == 404)
            #expect(try await edge.send("GET", "/v1/orders/\(id)", token: admin).status == 200)
            #expect(try await edge.send("GET", "/v1/orders/\(id)").status == 401)
            let mine = try await edge.send("GET", "/v1/orders", token: customer)
            #expect((mine.json["items"] as? [[String: Any]])?.count == 1)
            #expect(
                ((try await edge.send("GET", "/v1/orders", token: other)).json["items"] as? [[String: Any]])?.count == 0
            )
            #expect(try await edge.send("GET", "/v1/orders?customer_id=customer-a", token: other).status == 403)
            #expect(
                ((try await edge.send("GET", "/v1/orders?customer_id=customer-a&status=confirmed", token: admin)).json[
                    "items"] as? [[String: Any]])?.count == 1)

            // Events exactly as on the broker, with positions, in log order; cancel of a confirmed order is 409.
            let events = try await edge.send("GET", "/v1/orders/\(id)/events", token: customer)
            let items = try #require(events.json["items"] as? [[String: Any]])
            #expect(
                items.map { $0["type"] as? String } == [
                    "order.placed", "stock.reserved", "payment.requested", "payment.settled", "order.confirmed",
                ])
            let positions = items.compactMap { $0["position"] as? Int }
            #expect(positions == positions.sorted() && positions.count == 5)
            #expect(try await edge.send("POST", "/v1/orders/\(id)/cancel", token: customer).status == 409)
        }
    }

    @Test func concurrentOrdersWithOneKeyMakeOneOrderAndClaimsShareCommits() async throws {
        try await withEdge { edge in
            let admin = try await EdgeClient.admin()
            _ = try await edge.send(
                "POST", "/v1/products", token: admin, json: #"{"sku":"idem","name":"I","price_cents":10,"stock":100}"#,
                headers: ["Prefer": "wait=5"])
            let customer = try await EdgeClient.token(sub: "customer-i")
            let body = #"{"lines":[{"sku":"idem","quantity":1}],"payment":{"token":"tok_ok"}}"#
            // 50 with one key and 50 with keys of their own, all at once: claims share commits.
            let (replies, distinct) = try await withThrowingTaskGroup(of: (EdgeClient.Reply, Bool).self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let key = index.isMultiple(of: 2) ? "same-key" : "key-\(index)"
                        let reply = try await edge.send(
                            "POST", "/v1/orders", token: customer, json: body, headers: ["Idempotency-Key": key])
                        return (reply, key != "same-key")
                    }
                }
                return try await group.reduce(into: ([EdgeClient.Reply](), [EdgeClient.Reply]())) {
                    if $1.1 { $0.1.append($1.0) } else { $0.0.append($1.0) }
                }
            }
            #expect((replies + distinct).allSatisfy { $0.status == 202 })
            #expect(Set(replies.compactMap { $0.json["id"] as? String }).count == 1)
            let distinctIds = Set(distinct.compactMap { $0.json["id"] as? String })
            #expect(distinctIds.count == 50 && !distinctIds.contains(replies[0].json["id"] as? String ?? ""))
            let metrics = try await edge.send("GET", "/metrics").text
            let commits = metrics.split(separator: "\n").first {
                $0.hasPrefix("depot_edge_idempotency_claims_per_commit_count ")
            }.flatMap { Double($0.split(separator: " ").last!) }
            #expect(commits != nil && commits! < 100, "claims were not committed together: \(commits ?? -1) commits")
            // Key order and whitespace do not make a different body; another body does.
            let same = try await edge.send(
                "POST", "/v1/orders", token: customer,
                json: #"{ "payment": {"token":"tok_ok"}, "lines":[{"quantity":1,"sku":"idem"}] }"#,
                headers: ["Idempotency-Key": "same-key"])
            #expect(same.json["id"] as? String == replies[0].json["id"] as? String)
            let different = try await edge.send(
                "POST", "/v1/orders", token: customer,
                json: #"{"lines":[{"sku":"idem","quantity":2}],"payment":{"token":"tok_ok"}}"#,
                headers: ["Idempotency-Key": "same-key"])
            #expect(different.status == 409)
            // The same key from another customer is another order.
            let other = try await edge.send(
                "POST", "/v1/orders", token: try await EdgeClient.token(sub: "customer-j"), json: body,
                headers: ["Idempotency-Key": "same-key"])
            #expect(other.json["id"] as? String != replies[0].json["id"] as? String)
            let orders = try await eventually {
                // One order for the shared key, one for each of the 50 others.
                (try await edge.send("GET", "/v1/orders?customer_id=customer-i&limit=100", token: admin)).json["items"]
                    .map { ($0 as? [Any])?.count == 51 } ?? false
            }
            #expect(orders)
            // Without an Idempotency-Key every request is a new order.
            let unkeyed = [
                try await edge.send("POST", "/v1/orders", token: customer, json: body),
                try await edge.send("POST", "/v1/orders", token: customer, json: body),
            ]
            #expect(unkeyed.allSatisfy { $0.status == 202 })
            #expect(Set(unkeyed.compactMap { $0.json["id"] as? String }).count == 2)
        }
    }

    /// A commit that does not return (here a lock; in production a synchronous standby that is
    /// away) is answered 503 after DEPOT_CONFIRM_TIMEOUT, and the same key succeeds afterwards.
    @Test func aClaimThatCannotCommitInTimeIs503AndTheKeyWorksAfterwards() async throws {
        try await withEdge(["DEPOT_CONFIRM_TIMEOUT": "1s"]) { edge in
            let customer = try await EdgeClient.token(sub: "customer-slow-commit")
            let body = #"{"lines":[{"sku":"any","quantity":1}],"payment":{"token":"tok_ok"}}"#
            let pool = try edge.depot.pool(maxConnections: 1)
            let blocker = try await pool.withConnection { connection in
                // An open transaction holds the key's row: the edge's claim waits for it.
                try await connection.execute("BEGIN")
                try await connection.execute(
                    """
                    INSERT INTO edge.idempotency_keys (subject, key, request, order_id)
                    VALUES ('customer-slow-commit', 'held', 'other', \(UUID()))
                    """)
                let started = ContinuousClock.now
                let reply = try await edge.send(
                    "POST", "/v1/orders", token: customer, json: body, headers: ["Idempotency-Key": "held"])
                let waited = ContinuousClock.now - started
                try await connection.execute("ROLLBACK")
                return (reply, waited)
            }
            #expect(blocker.0.status == 503, "\(blocker.0.status) \(blocker.0.text)")
            #expect(blocker.0.header("Retry-After") != nil)
            #expect(blocker.1 >= .milliseconds(900) && blocker.1 < .seconds(5), "answered after \(blocker.1)")
            let retried = try await edge.send(
                "POST", "/v1/orders", token: customer, json: body, headers: ["Idempotency-Key": "held"])
            #expect(retried.status == 202, "\(retried.status) \(retried.text)")
            await pool.shutdown()
        }
    }

    @Test func rateLimitAnswers429WithRetryAfter() async throws {
        // One token back every 10 s: six requests cannot earn one back, however slow the machine.
        try await withEdge(["DEPOT_RATE_LIMIT": "0.1/s,burst=3"]) { edge in
            var statuses: [Int] = []
            var last: EdgeClient.Reply?
            for _ in 0..<6 {
                let reply = try await edge.send("GET", "/v1/products")
                statuses.append(reply.status)
                last = reply
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == 200 })
            #expect(statuses.last == 429)
            #expect(Int(last?.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(last?.header("RateLimit-Limit") == "3")
            // Another caller has its own bucket.
            #expect(
                try await edge.send("GET", "/v1/products", token: try await EdgeClient.token(sub: "someone-else"))
                    .status == 200)
        }
    }

    @Test func systemRoutes() async throws {
        try await withEdge { edge in
            #expect(try await edge.send("GET", "/healthz").status == 200)
            let ready = try await edge.send("GET", "/readyz")
            #expect(ready.status == 200)
            #expect(ready.json["broker"] as? String == "ok")
            let metrics = try await edge.send("GET", "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("hb_requests"))
            let document = try await edge.send("GET", "/openapi.json")
            #expect(document.json["openapi"] as? String == "3.1.0")
            let docs = try await edge.send("GET", "/docs")
            #expect(docs.status == 200 && docs.text.contains("/v1/orders/{id}/cancel"))
        }
    }
}
