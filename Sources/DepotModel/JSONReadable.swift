import CivilDate
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
        // The Codable path's fallbacks too, so both paths read the same times.
        guard
            let occurredAt = RFC3339.date(occurredText)
                ?? (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(occurredText))
                ?? (try? Date.ISO8601FormatStyle().parse(occurredText))
        else {
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

extension RFC3339 {
    /// `2026-01-01T12:00:00.123Z`: UTC, milliseconds, as Foundation's
    /// `ISO8601FormatStyle(includingFractionalSeconds: true)` writes it, without its cost (it was
    /// a large part of encoding every envelope).
    public static func string(_ date: Date) -> String {
        // Whole seconds, then the fraction truncated to milliseconds, as Foundation does, except
        // that a fraction a microsecond short of the next millisecond counts as it: a time read
        // from ".123" is a double just below 0.123, and must be written as ".123" again.
        let interval = date.timeIntervalSince1970
        let wholeSeconds = interval.rounded(.down)
        let fraction = Int(((interval - wholeSeconds) * 1000 + 0.001).rounded(.down))
        let milliseconds = Int(wholeSeconds) * 1000 + min(999, fraction)
        let (days, inDay) = milliseconds.quotientAndRemainder(dividingBy: 86_400_000)
        let (day, time) = inDay < 0 ? (days - 1, inDay + 86_400_000) : (days, inDay)
        let (year, month, dayOfMonth) = CivilDate.date(days: day)
        // Four digits only: anything else (never written by Depot) is Foundation's to spell.
        guard (0...9999).contains(year) else {
            return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var index = 0
            func put(_ value: Int, digits: Int) {
                var divisor = 1
                for _ in 1..<digits { divisor *= 10 }
                var rest = value
                while divisor > 0 {
                    buffer[index] = UInt8(ascii: "0") + UInt8(rest / divisor)
                    rest %= divisor
                    divisor /= 10
                    index += 1
                }
            }
            func put(_ character: Unicode.Scalar) {
                buffer[index] = UInt8(ascii: character)
                index += 1
            }
            put(year, digits: 4)
            put("-")
            put(month, digits: 2)
            put("-")
            put(dayOfMonth, digits: 2)
            put("T")
            put(time / 3_600_000, digits: 2)
            put(":")
            put(time / 60_000 % 60, digits: 2)
            put(":")
            put(time / 1000 % 60, digits: 2)
            put(".")
            put(time % 1000, digits: 3)
            put("Z")
            return index
        }
    }
}

/// RFC 3339 times as Depot writes them (`2026-01-01T12:00:00.123Z`, any fraction, `Z` or an
/// offset), read without Foundation's format styles; nil for anything else.
public enum RFC3339 {
    public static func date(_ text: String) -> Date? {
        var utf8 = Array(text.utf8)[...]
        func number(_ digits: Int) -> Int? {
            guard utf8.count >= digits else { return nil }
            var value = 0
            for byte in utf8.prefix(digits) {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            utf8 = utf8.dropFirst(digits)
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard let byte = utf8.first, characters.utf8.contains(byte) else { return false }
            utf8 = utf8.dropFirst()
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt"), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var fraction = 0.0
        if expect(".") {
            // As one integer over a power of ten: .123 is then the same double Foundation reads.
            var numerator = 0
            var denominator = 1
            var digits = 0
            while let byte = utf8.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                if digits < 9 {
                    numerator = numerator * 10 + Int(byte - UInt8(ascii: "0"))
                    denominator *= 10
                }
                digits += 1
                utf8 = utf8.dropFirst()
            }
            guard digits > 0 else { return nil }
            fraction = Double(numerator) / Double(denominator)
        }
        var offset = 0
        if !expect("Zz") {
            guard let sign = utf8.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
            utf8 = utf8.dropFirst()
            guard let hours = number(2), expect(":"), let minutes = number(2), hours < 24, minutes < 60 else {
                return nil
            }
            offset = (hours * 60 + minutes) * 60 * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard utf8.isEmpty else { return nil }
        let days = CivilDate.days(year: year, month: month, day: day)
        guard CivilDate.date(days: days) == (year, month, day) else { return nil }  // no 31 February
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
