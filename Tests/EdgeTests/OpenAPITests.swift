import Foundation
import HTTPTypes
import Testing

@testable import Edge

@Suite("OpenAPI document")
struct OpenAPITests {
    var document: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any]) ?? [:] }

    @Test("documents exactly the routes the router serves")
    func documentMatchesRouter() throws {
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let served = Set(RouteTable.all.map { "\($0.method.rawValue) \($0.path)" })
        #expect(documented == served)
        #expect(document["openapi"] as? String == "3.1.0")
    }

    @Test("every operation documents its errors as problem+json, and every $ref resolves")
    func errorsAndReferences() throws {
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        for (path, operations) in paths {
            for (method, operation) in operations {
                let responses = try #require((operation as? [String: Any])?["responses"] as? [String: Any], "\(method) \(path)")
                #expect(responses["429"] != nil, "\(method) \(path) lacks 429")
                if path.hasPrefix("/v1/") && (method == "post" || method == "patch" || method == "delete") {
                    #expect(responses["503"] != nil && responses["401"] != nil, "\(method) \(path)")
                }
            }
        }
        let references = OpenAPIDocument.json.components(separatedBy: "\"$ref\": \"#/components/schemas/").dropFirst()
            .map { String($0.prefix { $0 != "\"" }) }
        #expect(!references.isEmpty)
        for name in references { #expect(schemas[name] != nil, "missing schema \(name)") }
    }

    @Test("405 answers list the methods of the path")
    func methodsForPath() {
        let table = RouteTable()
        #expect(Set(table.methods(forPath: "/v1/products/abc").map(\.rawValue)) == ["GET", "PATCH", "DELETE"])
        #expect(table.methods(forPath: "/v1/orders/x/cancel").map(\.rawValue) == ["POST"])
        #expect(table.methods(forPath: "/v1/unknown").isEmpty)
    }

    @Test("the docs page lists every route")
    func docsPage() {
        for route in RouteTable.all {
            #expect(OpenAPIDocument.html.contains(OpenAPIDocument.escape(route.path)), "\(route.path)")
        }
        // Shared error responses are described where they are used.
        #expect(OpenAPIDocument.html.contains("Rate limit exceeded"))
        #expect(OpenAPIDocument.html.contains("<code>Idempotency-Key</code>") && OpenAPIDocument.html.contains("<code>sku</code>"))
    }

    @Test("traceparent: a valid header is kept, anything else replaced")
    func traceparent() {
        #expect(EdgeRoutes.isTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(!EdgeRoutes.isTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"))
        #expect(!EdgeRoutes.isTraceparent("garbage"))
    }

    @Test("a token bucket refills at its rate up to its burst")
    func tokenBucket() {
        let limiter = RateLimiter(rate: 2, burst: 3)
        let start = ContinuousClock.now
        #expect((0..<3).allSatisfy { _ in limiter.take("k", now: start).allowed })
        let refused = limiter.take("k", now: start)
        #expect(!refused.allowed && refused.retryAfter == 1)
        #expect(limiter.take("k", now: start + .milliseconds(600)).allowed)
        #expect(limiter.take("other", now: start).allowed)
    }
}
