import DepotModel
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Messaging
import Postgres
import Projector

/// The handlers of docs/interface.md §3: commands out to the broker (202 only after the confirm),
/// queries from the projections (never a service's own tables).
struct EdgeRoutes: Sendable {
    let publisher: any CommandPublishing
    let projections: any ProjectionReading
    let idempotency: any IdempotencyClaiming
    let waiters: ProjectionWaiters
    let metrics: EdgeMetrics
    let confirmTimeout: Duration

    /// The fields each request body may have, by the name of its schema in the OpenAPI document
    /// (`OpenAPIDocumentTests` checks each schema's properties against these).
    enum Fields {
        static let productCreate: Set<String> = ["sku", "name", "price_cents", "stock"]
        static let productUpdate: Set<String> = ["name", "price_cents"]
        static let stockAdjustment: Set<String> = ["delta"]
        static let orderCreate: Set<String> = ["lines", "payment"]
        static let orderLine: Set<String> = ["sku", "quantity"]
        static let payment: Set<String> = ["token"]

        static let bySchema: [String: Set<String>] = [
            "ProductCreate": productCreate, "ProductUpdate": productUpdate, "StockAdjustment": stockAdjustment,
            "OrderCreate": orderCreate, "OrderLineRequest": orderLine, "PaymentRequest": payment,
            "RedriveRequest": AdminRoutes.Fields.redrive, "ReplayDryRunRequest": AdminRoutes.Fields.replayDryRun,
        ]
    }

    static let skuRule = "[A-Za-z0-9._-]{1,64}"
    static func isSKU(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x5F
                    || $0 == 0x2D
            }
    }

    // MARK: - Products

    func createProduct(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        var body = try await FieldReader.body(request, context: context, allowed: Fields.productCreate)
        let sku = body.string("sku", length: 1...64, pattern: Self.isSKU, rule: Self.skuRule)
        let name = body.string("name", length: 1...200)
        let price = body.integer("price_cents", in: 0...1_000_000_000)
        let stock = body.integer("stock", in: 0...1_000_000_000)
        try body.finish()
        if try await product(sku!) != nil { throw Problem(.conflict, "product \(sku!) exists already") }
        let id = try await send(
            .productCreate, correlationId: sku!,
            CreateProduct(sku: sku!, name: name!, priceCents: price!, stock: stock!), request)
        return try await answer(
            request, accepted: id, location: "/v1/products/\(sku!)", key: sku!, status: .created,
            ready: { try await product(sku!) })
    }

    func listProducts(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let limit = try Self.limit(request)
        let after = try Cursor.productKey(request.uri.queryParameters["after"])
        var items = try await projections.products(after: after, limit: limit + 1)
        var next: String?
        if items.count > limit {
            items.removeLast()
            next = Cursor.product(after: items.last!.sku)
        }
        return try json(Page(items: items, next: next))
    }

    func getProduct(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let sku = try context.parameters.require("sku")
        let entry = try await cached(sku) {
            guard let view = try await product(sku) else { return nil }
            return ProjectionCache.Entry(
                body: Array(try Self.encoder.encode(view)), etag: "\"p\(view.version)\"", owner: nil, isFinal: false)
        }
        guard let entry else { throw Problem.notFound("no product \(sku.prefix(64))") }
        return conditional(request, entry)
    }

    /// A view from the cache, or read and encoded (keyed by the correlation id the projector
    /// names in its change notices: a sku or an order id).
    func cached(_ key: String, read: () async throws -> ProjectionCache.Entry?) async throws -> ProjectionCache.Entry? {
        let cache = waiters.cache
        if let hit = cache.get(key) { return hit }
        let generation = cache.generation
        guard let entry = try await read() else { return nil }
        // Only final orders are kept: a copy of anything that may still change could be older
        // than what the standby shows another edge (read-your-writes across edges).
        if entry.isFinal { cache.put(key, entry, readAt: generation) }
        return entry
    }

    func conditional(_ request: Request, _ entry: ProjectionCache.Entry) -> Response {
        if let match = request.headers[.ifNoneMatch],
            match.split(separator: ",").contains(where: {
                $0.trimmingCharacters(in: .whitespaces) == entry.etag || $0.trimmingCharacters(in: .whitespaces) == "*"
            })
        {
            return Response(status: .notModified, headers: [.eTag: entry.etag])
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .eTag: entry.etag],
            body: .init(byteBuffer: ByteBuffer(bytes: entry.body)))
    }

    func updateProduct(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let sku = try context.parameters.require("sku")
        var body = try await FieldReader.body(request, context: context, allowed: Fields.productUpdate)
        let name = body.string("name", required: false, length: 1...200)
        let price = body.integer("price_cents", required: false, in: 0...1_000_000_000)
        if body.fields.isEmpty { body.fail("body", "give name, price_cents or both") }
        try body.finish()
        guard let current = try await product(sku) else { throw Problem.notFound("no product \(sku.prefix(64))") }
        let id = try await send(
            .productUpdate, correlationId: sku, UpdateProduct(sku: sku, name: name, priceCents: price), request)
        return try await answer(
            request, accepted: id, location: "/v1/products/\(sku)", key: sku, status: .ok,
            ready: { try await product(sku).flatMap { $0.version > current.version ? $0 : nil } })
    }

    func discontinueProduct(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let sku = try context.parameters.require("sku")
        guard try await product(sku) != nil else { throw Problem.notFound("no product \(sku.prefix(64))") }
        let id = try await send(.productDiscontinue, correlationId: sku, DiscontinueProduct(sku: sku), request)
        return try await answer(
            request, accepted: id, location: "/v1/products/\(sku)", key: sku, status: .ok,
            ready: { try await product(sku).flatMap { $0.discontinued ? $0 : nil } })
    }

    func adjustStock(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let sku = try context.parameters.require("sku")
        var body = try await FieldReader.body(request, context: context, allowed: Fields.stockAdjustment)
        let delta = body.integer("delta", in: -1_000_000_000...1_000_000_000)
        if delta == 0 { body.fail("delta", "must not be 0") }
        try body.finish()
        guard let current = try await product(sku) else { throw Problem.notFound("no product \(sku.prefix(64))") }
        if current.stockAvailable + delta! < 0 {
            throw Problem(.conflict, "a write-off of \(-delta!) exceeds the \(current.stockAvailable) available")
        }
        let id = try await send(.stockAdjust, correlationId: sku, AdjustStock(sku: sku, delta: delta!), request)
        return try await answer(
            request, accepted: id, location: "/v1/products/\(sku)", key: sku, status: .ok,
            ready: { try await product(sku).flatMap { $0.version > current.version ? $0 : nil } })
    }

    func product(_ sku: String) async throws -> ProductView? {
        try await projections.product(sku)
    }

    // MARK: - Orders

    struct OrderRequest: Encodable {
        var lines: [OrderLine]
        var payment: PlaceOrder.Payment
    }

    func placeOrder(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let caller = try context.requireCaller()
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        if let key, !(1...128).contains(key.unicodeScalars.count) {
            throw Problem.invalid("Idempotency-Key", "must be 1 to 128 characters")
        }
        var body = try await FieldReader.body(request, context: context, allowed: Fields.orderCreate)
        var lines: [OrderLine] = []
        switch body.fields["lines"] {
        case nil: body.fail("lines", "is required")
        case .array(let items)?:
            if !(1...50).contains(items.count) { body.fail("lines", "must have 1 to 50 lines") }
            for (index, item) in items.prefix(50).enumerated() {
                do {
                    var line = try FieldReader(item, at: "lines[\(index)]", allowed: Fields.orderLine)
                    let sku = line.string("sku", length: 1...64, pattern: Self.isSKU, rule: Self.skuRule)
                    let quantity = line.integer("quantity", in: 1...1000)
                    body.errors += line.errors
                    if let sku, let quantity { lines.append(OrderLine(sku: sku, quantity: quantity)) }
                } catch let problem as Problem {
                    body.errors += problem.errors
                }
            }
        case let other?: body.fail("lines", "must be an array, not \(other.typeName)")
        }
        var token: String?
        switch body.fields["payment"] {
        case nil: body.fail("payment", "is required")
        case let value?:
            do {
                var payment = try FieldReader(value, at: "payment", allowed: Fields.payment)
                token = payment.string("token", length: 1...128)
                body.errors += payment.errors
            } catch let problem as Problem {
                body.errors += problem.errors
            }
        }
        try body.finish()

        let orderId: UUID
        if let key {
            let canonical = try IdempotencyKeys.canonical(OrderRequest(lines: lines, payment: .init(token: token!)))
            switch try await idempotency.claim(
                subject: caller.subject, key: key, request: canonical, timeout: confirmTimeout)
            {
            case .conflict:
                throw Problem(.conflict, "this Idempotency-Key was used with a different body")
            case .order(let id):
                // Every request with this key sends the command with the same order id (cheaper
                // than remembering which were confirmed): orders places an order id once, so a
                // repeat, or a retry after a 503, is harmless.
                orderId = id
            }
        } else {
            // No key, no database: the order is new, and a retry of this request is a new order.
            orderId = UUID()
        }
        let command = PlaceOrder(
            orderId: orderId, customerId: caller.subject, lines: lines, payment: .init(token: token!))
        _ = try await send(.orderPlace, correlationId: orderId.canonicalText, command, request)
        let id = orderId.canonicalText
        return try await answer(
            request, accepted: orderId, location: "/v1/orders/\(id)", key: id, status: .created,
            ready: { try await order(orderId).flatMap { $0.status.isFinal ? $0 : nil } })
    }

    func getOrder(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let caller = try context.requireCaller()
        guard let id = UUID(canonicalText: try context.parameters.require("id")) else {
            throw Problem.notFound("no such order")
        }
        let entry = try await cached(id.canonicalText) {
            guard let view = try await order(id) else { return nil }
            return ProjectionCache.Entry(
                body: Array(try Self.encoder.encode(view)), etag: "\"o\(view.version)\"", owner: view.customerId,
                isFinal: view.status.isFinal)
        }
        guard let entry, caller.role == .admin || entry.owner == caller.subject else {
            throw Problem.notFound("no such order")
        }
        return conditional(request, entry)
    }

    func listOrders(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let caller = try context.requireCaller()
        let limit = try Self.limit(request)
        var customer: String? = caller.role == .admin ? nil : caller.subject
        if let filter = request.uri.queryParameters["customer_id"].map(String.init) {
            guard caller.role == .admin || filter == caller.subject else {
                throw Problem(.forbidden, "customers list their own orders only")
            }
            customer = filter
        }
        var status: OrderStatus?
        if let text = request.uri.queryParameters["status"] {
            guard let value = OrderStatus(rawValue: String(text)) else {
                let names = OrderStatus.allCases.map(\.rawValue)
                throw Problem.invalid("status", "must be \(names.dropLast().joined(separator: ", ")) or \(names.last!)")
            }
            status = value
        }
        let after = try Cursor.orderKey(request.uri.queryParameters["after"])
        var items = try await projections.orders(
            OrderQuery(customer: customer, status: status, after: after, limit: limit + 1))
        var next: String?
        if items.count > limit {
            items.removeLast()
            next = Cursor.order(after: items.last!)
        }
        return try json(Page(items: items, next: next))
    }

    func cancelOrder(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let view = try await visibleOrder(context)
        guard !view.status.isFinal else { throw Problem(.conflict, "the order is \(view.status.rawValue) already") }
        let id = try await send(
            .orderCancel, correlationId: view.id.canonicalText,
            CancelOrder(orderId: view.id, reason: "cancelled by the customer"),
            request)
        return try await answer(
            request, accepted: id, location: "/v1/orders/\(view.id.canonicalText)", key: view.id.canonicalText,
            status: .ok, ready: { try await order(view.id).flatMap { $0.status.isFinal ? $0 : nil } })
    }

    func orderEvents(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let view = try await visibleOrder(context)
        let events = try await projections.events(ofOrder: view.id)
        // Each body exactly as on the broker, with its log position added in front.
        var text = #"{"items":["#
        for (index, event) in events.enumerated() {
            if index > 0 { text += "," }
            text += #"{"position":\#(event.position),"# + event.body.dropFirst()
        }
        text += "]}"
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The order named in the path, if the caller may see it (another customer's order is 404).
    func visibleOrder(_ context: EdgeContext) async throws -> OrderRow {
        let caller = try context.requireCaller()
        guard let id = UUID(canonicalText: try context.parameters.require("id")), let view = try await order(id),
            caller.role == .admin || view.customerId == caller.subject
        else { throw Problem.notFound("no such order") }
        return view
    }

    func order(_ id: UUID) async throws -> OrderRow? {
        try await projections.order(id)
    }

    // MARK: - Helpers

    /// Publishes a command and returns its message id once the broker confirmed it; 503 when it
    /// cannot (broker down, or no confirm within DEPOT_CONFIRM_TIMEOUT).
    func send<Payload: Codable & Sendable>(
        _ type: MessageType, correlationId: String, _ data: Payload, _ request: Request
    ) async throws -> UUID {
        guard publisher.isConnected else {
            metrics.command(type, .brokerDown)
            throw Problem.unavailable("the broker is unreachable; nothing was sent", retryAfter: 5)
        }
        let envelope = Envelope(type: type, correlationId: correlationId, causationId: nil, data: data)
        let started = ContinuousClock.now
        do {
            try await publisher.publish(envelope, traceparent: Self.traceparent(request), timeout: confirmTimeout)
        } catch {
            metrics.command(type, .unconfirmed)
            throw Problem.unavailable("the broker did not confirm the command in time; retry", retryAfter: 2)
        }
        metrics.command(type, .confirmed)
        metrics.confirmed(type, after: ContinuousClock.now - started)
        return envelope.id
    }

    /// The request's W3C trace context, or a new one.
    static func traceparent(_ request: Request) -> String {
        if let header = request.headers[HTTPField.Name("traceparent")!], isTraceparent(header) { return header }
        // A new trace: random ids in lower-case hex, written by DepotModel's UUID writer.
        let traceId = UUID().canonicalText.filter { $0 != "-" }
        let parentId = UUID().canonicalText.filter { $0 != "-" }.prefix(16)
        return "00-\(traceId)-\(parentId)-01"
    }

    static func isTraceparent(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].count == 2, parts[1].count == 32, parts[2].count == 16, parts[3].count == 2
        else { return false }
        return parts.allSatisfy { $0.allSatisfy(\.isHexDigit) } && parts[1] != String(repeating: "0", count: 32)
    }

    /// 202 with `Location`, or — with `Prefer: wait=N` — the resource once the projection shows
    /// the command's effect (`status`), still 202 after N seconds.
    func answer<View: Encodable & Sendable>(
        _ request: Request, accepted id: UUID, location: String, key: String, status: HTTPResponse.Status,
        ready: @Sendable () async throws -> View?
    ) async throws -> Response {
        if let seconds = Self.preferredWait(request), seconds > 0 {
            // The command is confirmed: a database outage while waiting still answers 202, never 503.
            let view: View?
            do { view = try await waiters.wait(for: key, until: .now + .seconds(seconds), check: ready) } catch let
                error as PostgresError
                where error.isUnavailable
            { view = nil }
            if let view {
                var response = try json(view, status: status)
                response.headers[.location] = location
                response.headers[HTTPField.Name("Preference-Applied")!] = "wait=\(seconds)"
                return response
            }
        }
        var response = try json(Accepted(id: id.canonicalText), status: .accepted)
        response.headers[.location] = location
        return response
    }

    /// `Prefer: wait=N` (RFC 7240), at most 10 seconds.
    static func preferredWait(_ request: Request) -> Int? {
        for value in request.headers[values: HTTPField.Name("Prefer")!] {
            for preference in value.split(separator: ",") {
                let parts = preference.split(separator: "=", maxSplits: 1).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                if parts.count == 2, parts[0].lowercased() == "wait", let seconds = Int(parts[1]), seconds >= 0 {
                    return min(seconds, 10)
                }
            }
        }
        return nil
    }

    static func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return 50 }
        guard let limit = Int(text), (1...500).contains(limit) else {
            throw Problem.invalid("limit", "must be a whole number from 1 to 500")
        }
        return limit
    }

    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        try Response.json(value, status: status)
    }

    static var encoder: JSONEncoder { EnvelopeCodec.encoder }
}

extension Response {
    /// `value` as JSON with sorted keys.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try EdgeRoutes.encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
