import DepotModel
import Foundation
import HTTPTypes
import Projector
import Testing

@testable import Edge

/// Queries (docs/interface.md §3.3): views, ETags, keyset cursors, the event log.
@Suite("Edge router: queries")
struct QueryTests {
    @Test(
        "products page in sku order; next is an opaque cursor, null on the last page; an empty after is the first page")
    func productPages() async throws {
        let edge = try await EdgeHarness()
        for sku in ["c", "a", "e", "b", "d"] { edge.projections.put(ProductView.sample(sku)) }
        try await edge.test { client in
            var seen: [String] = []
            var after: String? = ""
            var pages = 0
            while let cursor = after {
                let page = try await client.send(.get, "/v1/products?limit=2&after=\(cursor)")
                #expect(page.status == 200)
                seen += (page.json["items"] as? [[String: Any]] ?? []).compactMap { $0["sku"] as? String }
                after = page.json["next"] as? String
                #expect(page.json.keys.contains("next"))
                pages += 1
            }
            #expect(seen == ["a", "b", "c", "d", "e"] && pages == 3)
            let all = try await client.send(.get, "/v1/products")
            #expect((all.json["items"] as? [Any])?.count == 5 && all.json["next"] is NSNull)
            let exact = try await client.send(.get, "/v1/products?limit=5")
            #expect(exact.json["next"] is NSNull)
        }
    }

    @Test("orders page newest first, then by id; filters by status and customer")
    func orderPages() async throws {
        let edge = try await EdgeHarness()
        let base = Date(timeIntervalSince1970: 1_800_000_000.125)
        var expected: [String] = []
        for index in 0..<7 {
            // Two orders share each time: the id breaks the tie.
            let order = OrderRow.sample(
                status: index % 2 == 0 ? .confirmed : .cancelled, createdAt: base + Double(index / 2))
            edge.projections.put(order)
            expected.append(order.id.canonicalText)
        }
        edge.projections.put(OrderRow.sample(customer: "bob"))
        let admin = try await edge.admin()
        let alice = try await edge.token("alice")
        let created = expected
        try await edge.test { client in
            var seen: [String] = []
            var after: String? = ""
            while let cursor = after {
                let page = try await client.send(
                    .get, "/v1/orders?limit=3&customer_id=alice&after=\(cursor)", token: admin)
                #expect(page.status == 200)
                seen += (page.json["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                after = page.json["next"] as? String
            }
            let newestFirst = created.enumerated().sorted { a, b in
                a.offset / 2 != b.offset / 2 ? a.offset / 2 > b.offset / 2 : a.element > b.element
            }.map(\.element)
            #expect(seen == newestFirst)
            let cancelled = try await client.send(.get, "/v1/orders?status=cancelled", token: alice)
            #expect(
                (cancelled.json["items"] as? [[String: Any]])?.allSatisfy { $0["status"] as? String == "cancelled" }
                    == true)
            #expect((cancelled.json["items"] as? [Any])?.count == 3)
            #expect(try await (client.send(.get, "/v1/orders", token: admin).json["items"] as? [Any])?.count == 8)
        }
    }

    @Test("a view carries its ETag; If-None-Match with it (or *) is 304")
    func etags() async throws {
        let edge = try await EdgeHarness()
        edge.projections.put(ProductView.sample(version: 7))
        let order = OrderRow.sample()
        edge.projections.put(order)
        let alice = try await edge.token("alice")
        try await edge.test { client in
            let product = try await client.send(.get, "/v1/products/mug")
            #expect(product.status == 200 && product.header("ETag") == "\"p7\"")
            #expect(try await client.send(.get, "/v1/products/mug", headers: ["If-None-Match": "\"p7\""]).status == 304)
            #expect(
                try await client.send(.get, "/v1/products/mug", headers: ["If-None-Match": "\"p6\", *"]).status == 304)
            #expect(try await client.send(.get, "/v1/products/mug", headers: ["If-None-Match": "\"p6\""]).status == 200)
            #expect(try await client.send(.get, "/v1/products/nope").status == 404)
            let read = try await client.send(.get, "/v1/orders/\(order.id.canonicalText)", token: alice)
            #expect(read.header("ETag") == "\"o5\"")
            #expect(
                try await client.send(
                    .get, "/v1/orders/\(order.id.canonicalText)", token: alice, headers: ["If-None-Match": "\"o5\""]
                ).status == 304)
        }
    }

    @Test("final orders are cached until the projector's notice names them; what may still change is read each time")
    func cache() async throws {
        let edge = try await EdgeHarness()
        edge.projections.put(ProductView.sample(available: 10))
        let order = OrderRow.sample(status: .confirmed)
        edge.projections.put(order)
        let alice = try await edge.token("alice")
        let path = "/v1/orders/\(order.id.canonicalText)"
        try await edge.test { client in
            // A product can change at any time: never served from a copy (read-your-writes across edges).
            let before = try await client.stock("mug")
            edge.projections.put(ProductView.sample(available: 4, version: 2))
            let after = try await client.stock("mug")
            #expect(before == 10 && after == 4)
            #expect(edge.projections.reads(of: "mug") == 2)
            // A final order is read once, then served from the cache until a notice names it.
            let first = try await client.send(.get, path, token: alice)
            let second = try await client.send(.get, path, token: alice)
            #expect(first.header("ETag") == "\"o5\"" && second.status == 200)
            #expect(edge.projections.reads(of: order.id.canonicalText) == 1)
            var refunded = order
            refunded.version = 6
            edge.projections.put(refunded)
            edge.waiters.changed([order.id.canonicalText])
            let afterNotice = try await client.send(.get, path, token: alice)
            #expect(afterNotice.header("ETag") == "\"o6\"")
            refunded.version = 7
            edge.projections.put(refunded)
            edge.waiters.changed(nil)  // "maybe anything": the projector's "*" or a reconnection
            let afterAll = try await client.send(.get, path, token: alice)
            #expect(afterAll.header("ETag") == "\"o7\"")
            #expect(edge.projections.reads(of: order.id.canonicalText) == 3)
        }
    }

    @Test("the order view: every documented field, nulls until priced, no reason or reference when unset")
    func orderView() async throws {
        let edge = try await EdgeHarness()
        let pending = OrderRow.sample(status: .pending)
        let confirmed = OrderRow.sample(status: .confirmed)
        edge.projections.put(pending)
        edge.projections.put(confirmed)
        let alice = try await edge.token("alice")
        try await edge.test { client in
            let open = try await client.send(.get, "/v1/orders/\(pending.id.canonicalText)", token: alice).json
            #expect(
                Set(open.keys) == [
                    "id", "customer_id", "status", "lines", "total_cents", "payment", "created_at", "updated_at",
                    "version",
                ])
            #expect(open["total_cents"] is NSNull && open["status"] as? String == "pending")
            #expect((open["lines"] as? [[String: Any]])?.first?["unit_price_cents"] is NSNull)
            #expect(open["payment"] as? [String: String] == ["status": "none"])
            #expect(open["created_at"] as? String == "2027-01-15T08:00:00.500Z")
            let done = try await client.send(.get, "/v1/orders/\(confirmed.id.canonicalText)", token: alice).json
            #expect(done["payment"] as? [String: String] == ["status": "settled", "reference": "sim_1"])
            #expect(done["id"] as? String == confirmed.id.canonicalText)
        }
    }

    @Test("an order's events: each body as on the broker with its log position added first, in log order")
    func events() async throws {
        let edge = try await EdgeHarness()
        let order = OrderRow.sample()
        edge.projections.put(order)
        let bodies = [#"{"data":{},"type":"order.placed"}"#, #"{"data":{"reason":"x"},"type":"order.cancelled"}"#]
        edge.projections.put(
            events: [LoggedEvent(position: 3, body: bodies[0]), LoggedEvent(position: 9, body: bodies[1])], of: order.id
        )
        let alice = try await edge.token("alice")
        try await edge.test { client in
            let reply = try await client.send(.get, "/v1/orders/\(order.id.canonicalText)/events", token: alice)
            #expect(reply.status == 200)
            #expect(
                reply.text
                    == #"{"items":[{"position":3,"data":{},"type":"order.placed"},{"position":9,"data":{"reason":"x"},"type":"order.cancelled"}]}"#
            )
        }
    }
}

extension Client {
    /// `stock_available` of a product as the edge answers it.
    func stock(_ sku: String) async throws -> Int? {
        try await send(.get, "/v1/products/\(sku)").json["stock_available"] as? Int
    }
}
