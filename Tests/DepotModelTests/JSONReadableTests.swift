import DepotModel
import Foundation
import Testing

@Suite("Reading event data without Codable")
struct JSONReadableTests {
    static func randomText() -> String {
        let alphabet = Array("abcXYZ 09-_\"\\/\n\t\u{1}é€😀\u{7f}")
        return String((0..<Int.random(in: 0...12)).map { _ in alphabet.randomElement()! })
    }

    static func lines() -> [OrderLine] {
        (0..<Int.random(in: 0...4)).map { _ in OrderLine(sku: randomText(), quantity: Int.random(in: -5...Int.max)) }
    }

    /// Every payload the projections read: written by the envelope codec, read back by hand, equal.
    @Test("every projected payload reads back equal to what the codec wrote", arguments: 0..<200)
    func payloadsRoundTrip(_ seed: Int) throws {
        func check<P: Codable & Sendable & Hashable & JSONReadable>(_ type: MessageType, _ payload: P) throws {
            let body = try EnvelopeCodec.encode(
                Envelope(type: type, correlationId: "c", causationId: nil, data: payload))
            #expect(try EnvelopeCodec.readData(body, as: P.self) == payload)
        }
        let id = UUID()
        try check(.orderPlaced, OrderPlaced(orderId: id, customerId: Self.randomText(), lines: Self.lines()))
        let priced = (0..<Int.random(in: 0...4)).map { _ in
            PricedLine(
                sku: Self.randomText(), quantity: .random(in: 1...9), unitPriceCents: .random(in: Int.min...Int.max))
        }
        try check(.stockReserved, PricedOrder(orderId: id, lines: priced, totalCents: .random(in: 0...1_000_000)))
        try check(.stockReleased, StockReleased(orderId: id, lines: Self.lines()))
        try check(.paymentSettled, PaymentSettled(orderId: id, amountCents: 5, reference: Self.randomText()))
        try check(.orderCancelled, OrderReason(orderId: id, reason: Self.randomText()))
        try check(
            .productCreated,
            ProductCreated(sku: Self.randomText(), name: Self.randomText(), priceCents: 1, stock: .random(in: 0...100)))
        try check(
            .productUpdated,
            ProductUpdated(sku: Self.randomText(), name: Self.randomText(), priceCents: .random(in: 0...100)))
        try check(.stockAdjusted, StockAdjusted(sku: "s", delta: .random(in: -100...100), available: 3))
    }

    @Test("the parser agrees with JSONSerialization on escapes, unicode, numbers and nesting")
    func parserAgrees() throws {
        let documents = [
            #"{"a":"\u00e9\ud83d\ude00\n\t\\\/\"","b":[1,-0,2.5,-1e3,1E+2,0.001],"c":{"d":[[],{}]},"e":true,"f":false,"g":null}"#,
            " [ 1 , \"x\" , { \"k\" : [ ] } ] ",
            #""plain""#, "9223372036854775807", "-9223372036854775808", "12345678901234567890",
        ]
        func same(_ value: JSONValue, _ other: Any) -> Bool {
            switch value {
            case .null: return other is NSNull
            case .bool(let b): return (other as? Bool) == b
            case .integer(let i): return (other as? NSNumber)?.int64Value == Int64(i)
            case .double(let d): return (other as? NSNumber)?.doubleValue == d
            case .string(let s): return (other as? String) == s
            case .array(let values):
                guard let others = other as? [Any], others.count == values.count else { return false }
                return zip(values, others).allSatisfy { same($0, $1) }
            case .object(let members):
                guard let others = other as? [String: Any], others.count == members.count else { return false }
                return members.allSatisfy { member in others[member.key].map { same(member.value, $0) } ?? false }
            }
        }
        for document in documents {
            let parsed = try JSONValue.parse(Array(document.utf8))
            let reference = try JSONSerialization.jsonObject(with: Data(document.utf8), options: .fragmentsAllowed)
            #expect(same(parsed, reference), "\(document)")
        }
    }

    @Test("what the writer writes, the parser and JSONSerialization read back the same", arguments: 0..<100)
    func writerRoundTrips(_ seed: Int) throws {
        func random(_ depth: Int) -> JSONValue {
            switch Int.random(in: 0...(depth > 3 ? 4 : 6)) {
            case 0: return .null
            case 1: return .bool(.random())
            case 2: return .integer(.random(in: Int.min...Int.max))
            case 3: return .double(Double(Int.random(in: -1_000_000...1_000_000)) / 64)
            case 4: return .string(Self.randomText())
            case 5: return .array((0..<Int.random(in: 0...3)).map { _ in random(depth + 1) })
            default:
                // Unique keys: a JSON object with a repeated key has no single meaning.
                return .object(
                    (0..<Int.random(in: 0...3)).map { index in .init("k\(index)\(Self.randomText())", random(depth + 1))
                    })
            }
        }
        let value = random(0)
        let text = value.encoded()
        #expect(try JSONValue.parse(text) == value, "\(String(decoding: text, as: UTF8.self))")
        _ = try JSONSerialization.jsonObject(with: Data(text), options: .fragmentsAllowed)
    }

    @Test(
        "malformed documents are errors naming where, never a crash",
        arguments: [
            "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "[01]", "[1.]", "[-]", "[1e]", "\"abc", "\"\\x\"", "\"\\u12\"",
            "\"\\ud800\"", "\"\\udc00x\"", "\"a\u{1}b\"", "tru", "nul", "[1] 2", "{\"a\":1}}", "[\"\\",
        ])
    func malformed(_ document: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(document.utf8)) }
    }

    @Test("invalid UTF-8 and deep nesting are refused")
    func hostile() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) {
            try JSONValue.parse(
                Array((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8))
        }
    }

    @Test("a missing field, a null or a wrong type is invalid data naming the field")
    func wrongData() throws {
        func read(_ data: String) throws(EnvelopeError) -> PricedOrder {
            try EnvelopeCodec.readData(Array(#"{"data":\#(data)}"#.utf8))
        }
        let id = UUID().uuidString
        #expect(try read(#"{"order_id":"\#(id)","lines":[],"total_cents":5.0}"#).totalCents == 5)
        for (data, field) in [
            (#"{"lines":[],"total_cents":5}"#, "order_id"),
            (#"{"order_id":"\#(id)","lines":null,"total_cents":5}"#, "lines"),
            (#"{"order_id":"\#(id)","lines":[],"total_cents":"5"}"#, "total_cents"),
            (#"{"order_id":"\#(id)","lines":[],"total_cents":5.5}"#, "total_cents"),
            (#"{"order_id":"nope","lines":[],"total_cents":5}"#, "order_id"),
            (#"{"order_id":"\#(id)","lines":[{"sku":"a"}],"total_cents":5}"#, "quantity"),
        ] {
            do {
                _ = try read(data)
                Issue.record("\(data) was read")
            } catch {
                #expect(error.kind == .invalidData && error.detail.contains(field), "\(error)")
            }
        }
    }
}
