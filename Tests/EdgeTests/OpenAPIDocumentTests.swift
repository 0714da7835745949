import DepotModel
import Foundation
import HTTPTypes
import Projector
import Testing

@testable import Edge

/// The hand-written OpenAPI document (Sources/Edge/openapi.json) against the code: the routes by
/// operationId, every schema against what the edge encodes, every request body against what the
/// validator accepts.
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    typealias Object = [String: Any]
    let document: Object

    init() throws {
        document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? Object)
    }

    var paths: [String: Object] { document["paths"] as? [String: Object] ?? [:] }
    var components: Object { document["components"] as? Object ?? [:] }
    var schemas: [String: Object] { components["schemas"] as? [String: Object] ?? [:] }

    /// Every operation: (operationId, method, path, operation).
    var operations: [(id: String, method: String, path: String, operation: Object)] {
        paths.flatMap { path, methods in
            methods.compactMap { method, value in
                (value as? Object).map {
                    (id: $0["operationId"] as? String ?? "", method: method.uppercased(), path: path, operation: $0)
                }
            }
        }
    }

    /// Follows a `$ref` (`#/components/<kind>/<name>`).
    func resolve(_ value: Object) -> Object {
        guard let reference = value["$ref"] as? String else { return value }
        let parts = reference.split(separator: "/").map(String.init)
        guard parts.count == 4, parts[0] == "#", parts[1] == "components",
            let target = (components[parts[2]] as? [String: Object])?[parts[3]]
        else { return [:] }
        return resolve(target)
    }

    func schema(_ name: String) throws -> Object { try #require(schemas[name], "no schema \(name)") }

    // MARK: - Routes

    @Test("the embedded document is Sources/Edge/openapi.json as it is now")
    func embeddedIsCurrent() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../Sources/Edge/openapi.json")
        #expect(try Data(contentsOf: file) == Data(OpenAPIDocument.bytes))
        #expect(document["openapi"] as? String == "3.1.0")
    }

    @Test("documents exactly the operations the router serves, by operationId, method and path")
    func documentMatchesRouter() {
        let documented = Set(operations.map { "\($0.id) \($0.method) \($0.path)" })
        let served = Set(RouteTable.all.map { "\($0.operationId) \($0.method.rawValue) \($0.path)" })
        #expect(documented == served)
        #expect(Set(RouteTable.all.map(\.operationId)).count == RouteTable.all.count)
    }

    @Test("every $ref resolves")
    func references() throws {
        let text = String(decoding: OpenAPIDocument.bytes, as: UTF8.self)
        let references = text.components(separatedBy: "\"$ref\": \"").dropFirst().map {
            String($0.prefix { $0 != "\"" })
        }
        #expect(references.count > 50)
        for reference in Set(references) {
            #expect(!resolve(["$ref": reference]).isEmpty, "\(reference) does not resolve")
        }
    }

    @Test("every operation documents the errors any request may get, each as problem+json")
    func errors() throws {
        let probes: Set<String> = ["/healthz", "/readyz", "/metrics"]
        for (id, method, path, operation) in operations {
            let responses = try #require(operation["responses"] as? [String: Object], "\(id)")
            // A token sent is always verified; only probes are exempt from the rate limit.
            #expect(responses["401"] != nil, "\(id) lacks 401")
            #expect((responses["429"] != nil) == !probes.contains(path), "\(id): 429")
            if path.hasPrefix("/v1/") {
                #expect(responses["503"] != nil, "\(id) lacks 503 (the database or broker away)")
                #expect(responses["404"] != nil || path == "/v1/products" || path == "/v1/orders", "\(id) lacks 404")
            }
            if operation["requestBody"] != nil {
                for status in ["400", "413", "415"] { #expect(responses[status] != nil, "\(id) lacks \(status)") }
            }
            if method != "GET" { #expect(responses["202"] != nil && operation["security"] != nil, "\(id)") }
            for (status, response) in responses
            where status.hasPrefix("4") || (status.hasPrefix("5") && path != "/readyz") {
                let content = resolve(response)["content"] as? Object
                #expect(content?.keys.sorted() == ["application/problem+json"], "\(id) \(status)")
                #expect(resolve(response)["description"] as? String != nil, "\(id) \(status)")
            }
        }
    }

    @Test("DELETE says that a discontinued product stays readable, and links to it")
    func discontinue() throws {
        let operation = try #require(paths["/v1/products/{sku}"]?["delete"] as? Object)
        let description = try #require(operation["description"] as? String)
        #expect(description.contains("discontinued: true") && description.contains("not removed"))
        let responses = try #require(operation["responses"] as? [String: Object])
        for status in ["200", "202"] {
            let links = try #require(resolve(responses[status]!)["links"] as? [String: Object], "\(status)")
            #expect(
                links.values.contains {
                    $0["operationId"] as? String == "getProduct"
                        && ($0["parameters"] as? [String: String])?["sku"] == "$request.path.sku"
                })
        }
    }

    @Test("every link names an operation of the document and its parameters")
    func links() throws {
        var count = 0
        for (id, _, _, operation) in operations {
            for (status, response) in operation["responses"] as? [String: Object] ?? [:] {
                for (name, link) in resolve(response)["links"] as? [String: Object] ?? [:] {
                    count += 1
                    let target = try #require(
                        operations.first { $0.id == link["operationId"] as? String }, "\(id) \(status) \(name)")
                    let parameters = (target.operation["parameters"] as? [Object] ?? []).map(resolve).compactMap {
                        $0["name"] as? String
                    }
                    for parameter in (link["parameters"] as? [String: String] ?? [:]).keys {
                        #expect(
                            parameters.contains(parameter),
                            "\(id) \(status) \(name): \(target.id) has no parameter \(parameter)")
                    }
                }
            }
        }
        #expect(count >= 8)
    }

    // MARK: - Schemas against the views

    /// Checks an encoded value against a schema: its type, and for objects the properties —
    /// present keys are documented, required ones present — recursively.
    func check(_ value: JSONValue, against schema: Object, at path: String) {
        let schema = resolve(schema)
        if let constant = schema["const"] as? String {
            #expect(value == .string(constant), "\(path)")
            return
        }
        if let values = schema["enum"] as? [String] {
            #expect(values.map(JSONValue.string).contains(value), "\(path): \(value) not in \(values)")
        }
        let types = (schema["type"] as? [String]) ?? (schema["type"] as? String).map { [$0] } ?? []
        let type: String =
            switch value {
            case .null: "null"
            case .bool: "boolean"
            case .integer: "integer"
            case .double: "number"
            case .string: "string"
            case .array: "array"
            case .object: "object"
            }
        #expect(types.isEmpty || types.contains(type), "\(path): \(type) is not \(types)")
        if case .object(let members) = value {
            let properties = schema["properties"] as? [String: Object] ?? [:]
            let required = Set(schema["required"] as? [String] ?? [])
            let keys = Set(members.map(\.key))
            #expect(keys.isSubset(of: properties.keys), "\(path): undocumented \(keys.subtracting(properties.keys))")
            #expect(required.isSubset(of: keys), "\(path): missing \(required.subtracting(keys))")
            for member in members {
                if let property = properties[member.key] {
                    check(member.value, against: property, at: "\(path).\(member.key)")
                }
            }
        }
        if case .array(let array) = value, let items = schema["items"] as? Object {
            for (index, item) in array.enumerated() { check(item, against: items, at: "\(path)[\(index)]") }
        }
    }

    func encoded(_ value: some Encodable) throws -> JSONValue {
        try JSONValue.parse(Array(try EdgeRoutes.encoder.encode(value)))
    }

    func keys(_ value: JSONValue) -> Set<String> {
        guard case .object(let members) = value else { return [] }
        return Set(members.map(\.key))
    }

    /// The keys a sample with every optional field set encodes are exactly the schema's
    /// properties; those of a sample with none set are exactly its required ones.
    func expectKeys(_ full: some Encodable, _ bare: some Encodable, schema name: String, at pointer: [String] = [])
        throws
    {
        var schema = try schema(name)
        var fullValue = try encoded(full)
        var bareValue = try encoded(bare)
        for step in pointer {
            if step == "[]" {
                schema = resolve(schema["items"] as? Object ?? [:])
                if case .array(let items) = fullValue { fullValue = items.first ?? .null }
                if case .array(let items) = bareValue { bareValue = items.first ?? .null }
            } else {
                schema = resolve((schema["properties"] as? [String: Object])?[step] ?? [:])
                fullValue = fullValue[step] ?? .null
                bareValue = bareValue[step] ?? .null
            }
        }
        let properties = Set((schema["properties"] as? Object)?.keys.map { $0 } ?? [])
        #expect(keys(fullValue) == properties, "\(name) \(pointer)")
        #expect(keys(bareValue) == Set(schema["required"] as? [String] ?? []), "\(name) \(pointer) required")
        #expect(schema["additionalProperties"] as? Bool == false, "\(name) \(pointer) must refuse other properties")
    }

    static let fullOrder: OrderRow = {
        var order = OrderRow.sample(status: .confirmed)
        order.reason = "set"  // every optional field set, to see every key
        return order
    }()
    static let bareOrder = OrderRow.sample(status: .pending)

    @Test("Product is ProductView's encoding")
    func product() throws {
        try expectKeys(ProductView.sample(), ProductView.sample(), schema: "Product")
        check(try encoded(ProductView.sample()), against: try schema("Product"), at: "Product")
    }

    @Test("Order is the order row's encoding, nested lines and payment included")
    func order() throws {
        try expectKeys(Self.fullOrder, Self.bareOrder, schema: "Order")
        try expectKeys(Self.fullOrder, Self.bareOrder, schema: "Order", at: ["lines", "[]"])
        try expectKeys(Self.fullOrder, Self.bareOrder, schema: "Order", at: ["payment"])
        for status in OrderStatus.allCases {
            check(try encoded(OrderRow.sample(status: status)), against: try schema("Order"), at: "Order(\(status))")
        }
        #expect(try schema("OrderStatus")["enum"] as? [String] == OrderStatus.allCases.map(\.rawValue))
        #expect(try schema("PaymentStatus")["enum"] as? [String] == OrderRow.PaymentStatus.allCases.map(\.rawValue))
        // The listing's status filter is the same vocabulary.
        let filter = try #require((paths["/v1/orders"]?["get"] as? Object)?["parameters"] as? [Object]).map(resolve)
        #expect(
            filter.contains {
                $0["name"] as? String == "status"
                    && resolve($0["schema"] as? Object ?? [:])["enum"] as? [String]
                        == OrderStatus.allCases.map(\.rawValue)
            })
    }

    @Test("pages, the 202 answer, problems and readiness are what the edge encodes")
    func otherViews() throws {
        let productPage = Page(items: [ProductView.sample()], next: "YQ")
        try expectKeys(productPage, Page(items: [ProductView.sample()], next: nil), schema: "ProductPage")
        check(try encoded(productPage), against: try schema("ProductPage"), at: "ProductPage")
        check(
            try encoded(Page(items: [ProductView](), next: nil)), against: try schema("ProductPage"),
            at: "ProductPage(empty)")
        let orderPage = Page(items: [Self.fullOrder, Self.bareOrder], next: "YQ")
        try expectKeys(orderPage, Page(items: [Self.bareOrder], next: nil), schema: "OrderPage")
        check(try encoded(orderPage), against: try schema("OrderPage"), at: "OrderPage")
        let accepted = Accepted(id: UUID().canonicalText)
        try expectKeys(accepted, accepted, schema: "Accepted")
        check(try encoded(accepted), against: try schema("Accepted"), at: "Accepted")
        let ready = Readiness(broker: true, database: false, readDatabase: true)
        try expectKeys(ready, ready, schema: "Readiness")
        check(try encoded(ready), against: try schema("Readiness"), at: "Readiness")
        let problem = Problem.Body(
            type: "t", title: "Bad Request", status: 400, detail: "d", errors: [.init(field: "f", message: "m")])
        let bare = Problem.Body(type: "t", title: "Not Found", status: 404, detail: "d", errors: nil)
        let problemSchema = try schema("Problem")
        #expect(keys(try encoded(problem)) == Set((problemSchema["properties"] as? Object)?.keys.map { $0 } ?? []))
        #expect(keys(try encoded(bare)) == Set(problemSchema["required"] as? [String] ?? []))
        check(try encoded(problem), against: problemSchema, at: "Problem")
    }

    // MARK: - Request bodies against the validator

    @Test("each request body schema has exactly the fields the validator accepts, and nothing else")
    func requestBodies() throws {
        var used: Set<String> = []
        for (id, _, _, operation) in operations {
            guard let body = operation["requestBody"] as? Object else { continue }
            let content = try #require(body["content"] as? [String: Object], "\(id)")
            #expect(content.keys.sorted() == ["application/json"], "\(id)")
            let reference = try #require(content["application/json"]?["schema"] as? Object)["$ref"] as? String
            let name = try #require(
                reference?.split(separator: "/").last.map(String.init), "\(id): the body is a named schema")
            used.insert(name)
        }
        // Nested request objects are named schemas too.
        used.formUnion(["OrderLineRequest", "PaymentRequest"])
        #expect(used == Set(EdgeRoutes.Fields.bySchema.keys))
        for (name, fields) in EdgeRoutes.Fields.bySchema {
            let schema = try schema(name)
            #expect(Set((schema["properties"] as? Object)?.keys.map { $0 } ?? []) == fields, "\(name)")
            #expect(schema["additionalProperties"] as? Bool == false, "\(name): the validator refuses unknown fields")
        }
        let order = try schema("OrderCreate")["properties"] as? [String: Object]
        #expect(order?["lines"]?["items"] as? [String: String] == ["$ref": "#/components/schemas/OrderLineRequest"])
        #expect(order?["payment"] as? [String: String] == ["$ref": "#/components/schemas/PaymentRequest"])
    }

    @Test("the fields the validator requires are the schemas' required ones")
    func requiredFields() async throws {
        let edge = try await EdgeHarness()
        edge.projections.put(ProductView.sample())
        let admin = try await edge.admin()
        var requiredBySchema: [String: Set<String>] = [:]
        for (name, schema) in schemas { requiredBySchema[name] = Set(schema["required"] as? [String] ?? []) }
        let requiredFields = requiredBySchema
        let required = { @Sendable (name: String) -> Set<String> in requiredFields[name] ?? [] }
        let productUpdate = schemas["ProductUpdate"]?["minProperties"] as? Int
        try await edge.test { client in
            let cases: [(HTTPRequest.Method, String, String, Set<String>)] = [
                (.post, "/v1/products", "{}", required("ProductCreate")),
                (.post, "/v1/products/mug/stock", "{}", required("StockAdjustment")),
                (.post, "/v1/orders", "{}", required("OrderCreate")),
                (
                    .post, "/v1/orders", #"{"lines":[{}],"payment":{}}"#,
                    Set(required("OrderLineRequest").map { "lines[0].\($0)" }).union(
                        required("PaymentRequest").map { "payment.\($0)" })
                ),
            ]
            for (method, uri, body, expected) in cases {
                let reply = try await client.send(
                    method, uri, token: admin, json: body, headers: ["Idempotency-Key": "k"])
                #expect(reply.status == 400 && Set(reply.fields) == expected, "\(uri) \(body): \(reply.fields)")
            }
            // ProductUpdate requires no field but at least one (minProperties: 1).
            #expect(productUpdate == 1 && required("ProductUpdate").isEmpty)
            #expect(try await client.send(.patch, "/v1/products/mug", token: admin, json: "{}").fields == ["body"])
        }
    }

    // MARK: - The page

    @Test("the docs page lists every route and each operation's description")
    func docsPage() {
        for route in RouteTable.all {
            #expect(OpenAPIDocument.html.contains(OpenAPIDocument.escape(route.path)), "\(route.path)")
        }
        // Shared error responses are described where they are used.
        #expect(OpenAPIDocument.html.contains("Rate limit exceeded"))
        #expect(
            OpenAPIDocument.html.contains("<code>Idempotency-Key</code>")
                && OpenAPIDocument.html.contains("<code>sku</code>"))
        #expect(OpenAPIDocument.html.contains("discontinued: true"))
    }
}
