import Foundation
import HTTPTypes
import Testing

@testable import Edge

/// Routing (docs/interface.md §3.3, §3.6, §3.7): 404, 405 with Allow, 429, and the system routes.
@Suite("Edge router: routes, methods and the rate limit")
struct RoutingTests {
    @Test("an unknown path is 404, a known path with another method 405 listing the methods in Allow")
    func unknownRoutesAndMethods() async throws {
        let edge = try await EdgeHarness()
        try await edge.test { client in
            let missing = try await client.send(.get, "/v1/nothing-here")
            #expect(missing.status == 404 && missing.isProblem)
            for (method, uri, allow) in [
                ("PUT", "/v1/products/p-1", "DELETE, GET, PATCH"), ("DELETE", "/v1/products", "GET, POST"),
                ("GET", "/v1/orders/x/cancel", "POST"),
                ("POST", "/healthz", "GET"),
            ] {
                let reply = try await client.send(.init(method)!, uri)
                #expect(reply.status == 405 && reply.isProblem, "\(method) \(uri)")
                #expect(reply.header("Allow") == allow, "\(method) \(uri)")
            }
        }
    }

    @Test("405 answers list the methods of the path")
    func methodsForPath() {
        let table = RouteTable()
        #expect(Set(table.methods(forPath: "/v1/products/abc").map(\.rawValue)) == ["GET", "PATCH", "DELETE"])
        #expect(table.methods(forPath: "/v1/orders/x/cancel").map(\.rawValue) == ["POST"])
        #expect(table.methods(forPath: "/v1/unknown").isEmpty)
    }

    @Test(
        "over the rate limit: 429 with Retry-After and RateLimit-* headers; each caller has a bucket; probes are exempt"
    )
    func rateLimit() async throws {
        let edge = try await EdgeHarness(rateLimit: (rate: 0.001, burst: 3))
        let alice = try await edge.token("alice")
        try await edge.test { client in
            var statuses: [Int] = []
            var last: Client.Reply?
            for _ in 0..<5 {
                let reply = try await client.send(.get, "/v1/products")
                statuses.append(reply.status)
                last = reply
            }
            #expect(statuses == [200, 200, 200, 429, 429])
            #expect(last?.isProblem == true)
            #expect(Int(last?.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(last?.header("RateLimit-Limit") == "3" && last?.header("RateLimit-Remaining") == "0")
            let allowed = try await client.send(.get, "/v1/products", token: alice)
            #expect(allowed.status == 200 && allowed.header("RateLimit-Remaining") == "2")
            for uri in ["/healthz", "/readyz", "/metrics"] {
                #expect(try await client.send(.get, uri).status == 200, "\(uri)")
            }
        }
    }

    @Test("system routes: health, readiness, metrics, the OpenAPI document and its page")
    func systemRoutes() async throws {
        let edge = try await EdgeHarness()
        try await edge.test { client in
            let health = try await client.send(.get, "/healthz")
            #expect(health.status == 200 && health.text == #"{"status":"ok"}"#)
            let ready = try await client.send(.get, "/readyz")
            #expect(ready.status == 200 && ready.json["status"] as? String == "ready")
            let metrics = try await client.send(.get, "/metrics")
            #expect(
                metrics.status == 200 && metrics.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            #expect(metrics.text.contains("depot_edge_commands_total"))
            let document = try await client.send(.get, "/openapi.json")
            #expect(document.status == 200 && document.header("Content-Type") == "application/json")
            #expect(document.body == OpenAPIDocument.bytes && document.json["openapi"] as? String == "3.1.0")
            let docs = try await client.send(.get, "/docs")
            #expect(docs.status == 200 && docs.text.contains("/v1/orders/{id}/cancel"))
        }
    }
}
