import Foundation

/// A payload that reads itself from a parsed document without Codable: the events the
/// projections fold, which a rebuild reads by the million.
public protocol JSONReadable: Codable, Sendable {
    init(json: JSONValue) throws(EnvelopeError)
}

extension EnvelopeCodec {
    /// Only the data of a body that has been read whole before (an event from the log): the
    /// header is not looked at again.
    public static func readData<Payload: JSONReadable>(_ body: [UInt8], as payload: Payload.Type = Payload.self)
        throws(EnvelopeError) -> Payload
    {
        let document: JSONValue
        do { document = try JSONValue.parse(body) } catch {
            throw EnvelopeError(kind: .malformed, detail: error.description)
        }
        return try Payload(json: try document.field("data"))
    }
}

extension EnvelopeCodec {
    /// The whole envelope read by the small parser: a service's handler and the projector read
    /// every delivery, and Codable with Foundation's date parsing was their largest CPU cost.
    /// Errors are the same kinds `decode` gives.
    static func readEnvelope<Payload: JSONReadable>(_ body: [UInt8], data: Payload.Type) throws(EnvelopeError)
        -> Envelope<Payload>
    {
        let document: JSONValue
        do { document = try JSONValue.parse(body) } catch {
            throw EnvelopeError(kind: .malformed, detail: error.description)
        }
        let header = try readableHeader(document)
        let occurredText = try document.string("occurred_at")
        guard let occurredAt = RFC3339.anyDate(occurredText) else {
            throw EnvelopeError(kind: .invalidData, detail: "'\(occurredText.prefix(40))' is not an RFC 3339 time")
        }
        let causationId: UUID?
        switch document["causation_id"] {
        case nil, .null?: causationId = nil
        default: causationId = try document.uuid("causation_id")
        }
        return Envelope(
            id: header.id, type: header.type, version: header.version, occurredAt: occurredAt,
            correlationId: try document.string("correlation_id"), causationId: causationId,
            data: try Payload(json: try document.field("data")))
    }
}

extension JSONValue {
    func field(_ key: String) throws(EnvelopeError) -> JSONValue {
        guard case .object = self else {
            throw EnvelopeError(kind: .invalidData, detail: "expected an object holding \(key)")
        }
        guard let value = self[key], value != .null else {
            throw EnvelopeError(kind: .invalidData, detail: "missing field \(key)")
        }
        return value
    }

    func string(_ key: String) throws(EnvelopeError) -> String {
        guard case .string(let text) = try field(key) else { throw mismatch(key, "a string") }
        return text
    }

    func int(_ key: String) throws(EnvelopeError) -> Int {
        switch try field(key) {
        case .integer(let value): return value
        case .double(let value) where Int(exactly: value) != nil: return Int(exactly: value)!
        default: throw mismatch(key, "an integer")
        }
    }

    func uuid(_ key: String) throws(EnvelopeError) -> UUID {
        guard let uuid = UUID(canonicalText: try string(key)) else { throw mismatch(key, "a UUID") }
        return uuid
    }

    func array<Element: JSONReadable>(_ key: String, of element: Element.Type = Element.self) throws(EnvelopeError)
        -> [Element]
    {
        guard case .array(let values) = try field(key) else { throw mismatch(key, "an array") }
        var elements: [Element] = []
        elements.reserveCapacity(values.count)
        for value in values { elements.append(try Element(json: value)) }
        return elements
    }

    private func mismatch(_ key: String, _ expected: String) -> EnvelopeError {
        EnvelopeError(kind: .invalidData, detail: "wrong type at \(key): expected \(expected)")
    }
}

/// The value of one hex digit in ASCII, either case.
func hexDigitValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

extension OrderLine: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(sku: try json.string("sku"), quantity: try json.int("quantity"))
    }
}

extension PricedLine: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(
            sku: try json.string("sku"), quantity: try json.int("quantity"),
            unitPriceCents: try json.int("unit_price_cents"))
    }
}

extension OrderPlaced: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(
            orderId: try json.uuid("order_id"), customerId: try json.string("customer_id"),
            lines: try json.array("lines"))
    }
}

extension PricedOrder: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(
            orderId: try json.uuid("order_id"), lines: try json.array("lines"), totalCents: try json.int("total_cents"))
    }
}

extension StockReleased: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(orderId: try json.uuid("order_id"), lines: try json.array("lines"))
    }
}

extension PaymentSettled: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(
            orderId: try json.uuid("order_id"), amountCents: try json.int("amount_cents"),
            reference: try json.string("reference"))
    }
}

extension OrderReason: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(orderId: try json.uuid("order_id"), reason: try json.string("reason"))
    }
}

extension ProductDetails: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(
            sku: try json.string("sku"), name: try json.string("name"), priceCents: try json.int("price_cents"),
            stock: try json.int("stock"))
    }
}

extension ProductUpdated: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(sku: try json.string("sku"), name: try json.string("name"), priceCents: try json.int("price_cents"))
    }
}

extension StockAdjusted: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(sku: try json.string("sku"), delta: try json.int("delta"), available: try json.int("available"))
    }
}

extension PlaceOrder: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        let payment = try json.field("payment")
        self.init(
            orderId: try json.uuid("order_id"), customerId: try json.string("customer_id"),
            lines: try json.array("lines"), payment: .init(token: try payment.string("token")))
    }
}

extension PaymentRequested: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(
            orderId: try json.uuid("order_id"), amountCents: try json.int("amount_cents"),
            token: try json.string("token"))
    }
}

extension AdjustStock: JSONReadable {
    public init(json: JSONValue) throws(EnvelopeError) {
        self.init(sku: try json.string("sku"), delta: try json.int("delta"))
    }
}
