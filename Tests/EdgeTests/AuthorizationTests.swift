import DepotModel
import Foundation
import HTTPTypes
import Projector
import Testing

@testable import Edge

/// 401, 403 and 404 (docs/interface.md §3.2): tokens, roles, and orders that belong to someone else.
@Suite("Edge router: tokens and roles")
struct AuthorizationTests {
    @Test("every invalid token is 401 with WWW-Authenticate, on every route")
    func invalidTokens() async throws {
        let edge = try await EdgeHarness()
        let rejected: [(String, String)] = [
            (
                "wrong signature",
                try await EdgeHarness.forgedToken(role: "admin", secret: String(repeating: "another-secret-", count: 5))
            ),
            ("alg none", try await EdgeHarness.forgedToken(role: "admin", alg: "none")),
            ("HS512", try await EdgeHarness.forgedToken(role: "admin", alg: "HS512")),
            ("expired", try await EdgeHarness.forgedToken(role: "admin", expiresIn: -60)),
            ("no sub", try await EdgeHarness.forgedToken(sub: nil, role: "admin")),
            ("empty sub", try await EdgeHarness.forgedToken(sub: "", role: "admin")),
            ("no role", try await EdgeHarness.forgedToken(role: nil)),
            ("unknown role", try await EdgeHarness.forgedToken(role: "root")),
            ("garbage", "not.a.jwt"),
        ]
        try await edge.test { client in
            for (name, token) in rejected {
                for (method, uri) in [("POST", "/v1/products"), ("GET", "/v1/products"), ("GET", "/healthz")] {
                    let reply = try await client.send(.init(method)!, uri, token: token, json: "{}")
                    #expect(reply.status == 401, "\(name) on \(method) \(uri): \(reply.status)")
                    #expect(reply.isProblem && reply.header("WWW-Authenticate") == "Bearer")
                }
            }
            let basic = try await client.send(.get, "/v1/products", headers: ["Authorization": "Basic YTpi"])
            #expect(basic.status == 401)
            let none = try await client.send(.post, "/v1/products", json: "{}")
            #expect(none.status == 401 && none.header("WWW-Authenticate") == "Bearer")
            #expect(try await client.send(.get, "/v1/orders").status == 401)
        }
        #expect(edge.publisher.published.isEmpty)
    }

    @Test("a customer on an admin route is 403; reads of the catalog need no token")
    func roles() async throws {
        let edge = try await EdgeHarness()
        edge.projections.put(ProductView.sample())
        let customer = try await edge.token()
        try await edge.test { client in
            for (method, uri, body) in [
                ("POST", "/v1/products", #"{"sku":"a","name":"A","price_cents":1,"stock":1}"#),
                ("PATCH", "/v1/products/mug", #"{"name":"x"}"#),
                ("DELETE", "/v1/products/mug", nil), ("POST", "/v1/products/mug/stock", #"{"delta":1}"#),
            ] {
                let reply = try await client.send(.init(method)!, uri, token: customer, json: body)
                #expect(reply.status == 403 && reply.isProblem, "\(method) \(uri): \(reply.status)")
            }
            #expect(try await client.send(.get, "/v1/products/mug").status == 200)
            #expect(try await client.send(.get, "/v1/products").status == 200)
        }
        #expect(edge.publisher.published.isEmpty)
    }

    @Test("another customer's order is 404 like an unknown one; an admin sees every order")
    func ownership() async throws {
        let edge = try await EdgeHarness()
        let order = OrderRow.sample(customer: "alice", status: .reserved)
        edge.projections.put(order)
        let alice = try await edge.token("alice")
        let bob = try await edge.token("bob")
        let admin = try await edge.admin()
        let id = order.id.canonicalText
        try await edge.test { client in
            for (method, uri) in [
                ("GET", "/v1/orders/\(id)"), ("GET", "/v1/orders/\(id)/events"), ("POST", "/v1/orders/\(id)/cancel"),
            ] {
                let reply = try await client.send(.init(method)!, uri, token: bob)
                #expect(reply.status == 404 && reply.isProblem, "\(method) \(uri)")
            }
            #expect(try await client.send(.get, "/v1/orders/\(id)", token: alice).status == 200)
            // Any spelling.
            #expect(try await client.send(.get, "/v1/orders/\(id.uppercased())", token: alice).status == 200)
            #expect(try await client.send(.get, "/v1/orders/\(id)", token: admin).status == 200)
            #expect(try await client.send(.get, "/v1/orders/\(UUID().canonicalText)", token: admin).status == 404)
            #expect(try await client.send(.get, "/v1/orders/not-a-uuid", token: admin).status == 404)
            // Listing: a customer sees their own; naming another customer is 403.
            #expect(try await (client.send(.get, "/v1/orders", token: alice).json["items"] as? [Any])?.count == 1)
            #expect(try await (client.send(.get, "/v1/orders", token: bob).json["items"] as? [Any])?.count == 0)
            #expect(try await client.send(.get, "/v1/orders?customer_id=alice", token: bob).status == 403)
            #expect(try await client.send(.get, "/v1/orders?customer_id=bob", token: bob).status == 200)
            #expect(
                try await (client.send(.get, "/v1/orders?customer_id=alice", token: admin).json["items"] as? [Any])?
                    .count == 1)
        }
        #expect(edge.publisher.published.isEmpty)
    }
}
