import Foundation
import HTTPTypes
import Testing

@testable import Edge

/// 400, 413 and 415 (docs/interface.md §3.1, §3.6): every invalid field named, never a 500.
@Suite("Edge router: request validation")
struct RequestValidationTests {
    @Test("a product body names every invalid field, and unknown fields")
    func productFields() async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        try await edge.test { client in
            let invalid = try await client.send(
                .post, "/v1/products", token: admin,
                json: #"{"sku":"bad sku!","name":"","price_cents":-1,"stock":"many"}"#)
            #expect(invalid.status == 400 && invalid.isProblem)
            #expect(Set(invalid.fields) == ["sku", "name", "price_cents", "stock"])
            #expect(invalid.json["detail"] as? String == "4 fields are invalid")
            let unknown = try await client.send(
                .post, "/v1/products", token: admin,
                json: #"{"sku":"a","name":"A","price_cents":1,"stock":1,"colour":"red"}"#)
            #expect(unknown.status == 400 && unknown.fields == ["colour"])
            let missing = try await client.send(.post, "/v1/products", token: admin, json: "{}")
            #expect(Set(missing.fields) == ["sku", "name", "price_cents", "stock"])
        }
        #expect(edge.publisher.published.isEmpty)
    }

    @Test(
        "malformed or mistyped bodies are 400, never 500",
        arguments: [
            "{", "[]", "null", "\"text\"", "1", #"{"sku":"a","name":"A","price_cents":1e400,"stock":1}"#,
            #"{"sku":"a","name":"A","price_cents":99999999999999999999999,"stock":1}"#,
            #"{"sku":"a","name":"A","price_cents":1.5,"stock":1}"#,
            #"{"sku":1,"name":true,"price_cents":"1","stock":null}"#,
            String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000),
            #"{"sku":"a","name":"A","price_cents":1,"stock":1000000001}"#,
            #"{"sku":"\#(String(repeating: "x", count: 65))","name":"A","price_cents":1,"stock":1}"#,
        ])
    func malformed(body: String) async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        try await edge.test { client in
            let reply = try await client.send(.post, "/v1/products", token: admin, json: body)
            #expect(reply.status == 400, "\(body.prefix(40)) → \(reply.status) \(reply.text.prefix(200))")
            #expect(reply.isProblem)
        }
    }

    @Test("broken UTF-8 is 400; another content type is 415; a body over 64 KiB is 413")
    func transport() async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        try await edge.test { client in
            let broken = try await client.send(
                .post, "/v1/products", token: admin, body: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D],
                headers: ["Content-Type": "application/json"])
            #expect(broken.status == 400 && broken.fields == ["body"])
            let text = try await client.send(
                .post, "/v1/products", token: admin, body: Array("sku=a".utf8), headers: ["Content-Type": "text/plain"])
            #expect(text.status == 415 && text.isProblem)
            let none = try await client.send(.post, "/v1/products", token: admin, body: Array("{}".utf8))
            #expect(none.status == 415)
            let huge = try await client.send(
                .post, "/v1/products", token: admin,
                json: #"{"name":""# + String(repeating: "x", count: 70_000) + #""}"#)
            #expect(huge.status == 413 && huge.isProblem)
            // 64 KiB is the limit, not less.
            let near = try await client.send(
                .post, "/v1/products", token: admin,
                json: #"{"name":""# + String(repeating: "x", count: 60_000) + #""}"#)
            #expect(near.status == 400)
        }
    }

    @Test(
        "numbers are read as JSON Schema reads them: 2.0 and 2e0 are integers, 1.5 is not; a repeated key's last value counts"
    )
    func numbers() async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        try await edge.test { client in
            for quantity in ["2.0", "2e0", "2"] {
                let order = try await client.send(
                    .post, "/v1/orders", token: admin,
                    json: #"{"lines":[{"sku":"a","quantity":"# + quantity + #"}],"payment":{"token":"t"}}"#)
                #expect(order.status == 202, "quantity \(quantity)")
            }
            let fraction = try await client.send(
                .post, "/v1/orders", token: admin,
                json: #"{"lines":[{"sku":"a","quantity":1.5}],"payment":{"token":"t"}}"#)
            #expect(fraction.status == 400 && fraction.fields == ["lines[0].quantity"])
            let repeated = try await client.send(
                .post, "/v1/orders", token: admin,
                json: #"{"lines":[{"sku":"a","quantity":0,"quantity":3}],"payment":{"token":"t"}}"#)
            #expect(repeated.status == 202)
            let bom = try await client.send(
                .post, "/v1/orders", token: admin,
                body: [0xEF, 0xBB, 0xBF] + Array(#"{"lines":[{"sku":"a","quantity":1}],"payment":{"token":"t"}}"#.utf8),
                headers: ["Content-Type": "application/json"])
            #expect(bom.status == 202)
            let deep = try await client.send(
                .post, "/v1/orders", token: admin, json: String(repeating: "[", count: 10_000))
            #expect(deep.status == 400 && deep.fields == ["body"])
        }
        #expect(edge.publisher.published.map { $0.correlationId }.count == 5)
    }

    @Test("an order names nested fields by path; the Idempotency-Key header is bounded")
    func orderFields() async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        try await edge.test { client in
            let order = try await client.send(
                .post, "/v1/orders", token: admin,
                json:
                    #"{"lines":[{"sku":"a","quantity":0},{"sku":"b c","quantity":1},{"sku":"d","quantity":1,"x":1}],"payment":{}}"#,
                headers: ["Idempotency-Key": "k"])
            #expect(order.status == 400)
            #expect(Set(order.fields) == ["lines[0].quantity", "lines[1].sku", "lines[2].x", "payment.token"])
            let empty = try await client.send(
                .post, "/v1/orders", token: admin, json: #"{"lines":[],"payment":{"token":"t"}}"#,
                headers: ["Idempotency-Key": "k"])
            #expect(empty.fields == ["lines"])
            let types = try await client.send(
                .post, "/v1/orders", token: admin, json: #"{"lines":{},"payment":"t"}"#,
                headers: ["Idempotency-Key": "k"])
            #expect(Set(types.fields) == ["lines", "payment"])
            let body = #"{"lines":[{"sku":"a","quantity":1}],"payment":{"token":"t"}}"#
            let longKey = try await client.send(
                .post, "/v1/orders", token: admin, json: body,
                headers: ["Idempotency-Key": String(repeating: "k", count: 129)])
            #expect(longKey.status == 400 && longKey.fields == ["Idempotency-Key"])
        }
        #expect(edge.publisher.published.isEmpty)
    }

    @Test("PATCH needs a field, a stock delta is not 0, and lengths count code points as JSON Schema does")
    func changes() async throws {
        let edge = try await EdgeHarness()
        edge.projections.put(ProductView.sample())
        let admin = try await edge.admin()
        try await edge.test { client in
            let nothing = try await client.send(.patch, "/v1/products/mug", token: admin, json: "{}")
            #expect(nothing.status == 400 && nothing.fields == ["body"])
            let zero = try await client.send(.post, "/v1/products/mug/stock", token: admin, json: #"{"delta":0}"#)
            #expect(zero.status == 400 && zero.fields == ["delta"])
            // 200 code points (100 characters of e + combining acute) is the most a name may have; 201 is too many.
            let longest = String(repeating: "e\u{301}", count: 100)
            #expect(
                try await client.send(.patch, "/v1/products/mug", token: admin, json: #"{"name":"\#(longest)"}"#).status
                    == 202)
            let over = try await client.send(
                .patch, "/v1/products/mug", token: admin, json: #"{"name":"\#(longest)e"}"#)
            #expect(over.status == 400 && over.fields == ["name"])
        }
    }

    @Test("bad query parameters name the parameter")
    func queryParameters() async throws {
        let edge = try await EdgeHarness()
        let admin = try await edge.admin()
        try await edge.test { client in
            for (uri, field) in [
                ("/v1/products?limit=0", "limit"), ("/v1/products?limit=501", "limit"),
                ("/v1/products?limit=x", "limit"),
                ("/v1/products?after=garbage!", "after"), ("/v1/orders?status=lost", "status"),
                ("/v1/orders?after=bm90LWEtY3Vyc29y", "after"),
            ] {
                let reply = try await client.send(.get, uri, token: admin)
                #expect(reply.status == 400 && reply.fields == [field], "\(uri): \(reply.status) \(reply.text)")
            }
        }
    }
}
