import DepotModel
import Foundation
import Testing

@Suite("Envelope")
struct EnvelopeTests {
    struct Placed: Codable, Sendable, Equatable {
        var customerId: String
        var lines: [Line]
        struct Line: Codable, Sendable, Equatable {
            var sku: String
            var quantity: Int
        }
        enum CodingKeys: String, CodingKey {
            case customerId = "customer_id"
            case lines
        }
    }

    @Test("encodes the contract's fields with snake_case names and RFC 3339 times, and reads them back")
    func roundTrip() throws {
        let causation = UUID()
        let envelope = Envelope(
            type: .orderPlaced, occurredAt: Date(timeIntervalSince1970: 1_764_000_000.25), correlationId: "order-1",
            causationId: causation, data: Placed(customerId: "c-1", lines: [.init(sku: "SKU-1", quantity: 2)]))
        let body = try EnvelopeCodec.encode(envelope)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(Set(object.keys) == ["id", "type", "version", "occurred_at", "correlation_id", "causation_id", "data"])
        #expect(object["type"] as? String == "order.placed")
        #expect(object["version"] as? Int == 1)
        #expect(object["occurred_at"] as? String == "2025-11-24T16:00:00.250Z")
        let back = try EnvelopeCodec.decode(body, as: Placed.self)
        #expect(back.id == envelope.id && back.causationId == causation && back.correlationId == "order-1")
        #expect(back.data == envelope.data)
        #expect(back.occurredAt == envelope.occurredAt)
    }

    @Test(
        "each kind of poison body gets its own reason",
        arguments: [
            ("not json at all", EnvelopeError.Kind.malformed),
            (#"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.placed"}"#, .malformed),
            (#"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.teleported","version":1}"#, .unknownType),
            (#"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.placed","version":2}"#, .unsupportedVersion),
            (
                #"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.placed","version":1,"occurred_at":"2025-11-24T16:00:00Z","correlation_id":"o","causation_id":null,"data":{"customer_id":5,"lines":[]}}"#,
                .invalidData
            ),
        ])
    func poison(body: String, kind: EnvelopeError.Kind) {
        do {
            _ = try EnvelopeCodec.decode(Array(body.utf8), as: Placed.self)
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.kind == kind)
            #expect(!error.detail.isEmpty)
        }
    }

    @Test("the small parser reads what Codable wrote, for every type the services read with it")
    func readablePayloadsRoundTrip() throws {
        func roundTrip<Payload: Codable & Sendable & Hashable>(_ type: MessageType, _ data: Payload) throws {
            let envelope = Envelope(
                type: type, occurredAt: Date(timeIntervalSince1970: 1_764_000_000.125), correlationId: "c",
                causationId: UUID(), data: data)
            let back = try EnvelopeCodec.decode(try EnvelopeCodec.encode(envelope), as: Payload.self)
            #expect(back.id == envelope.id && back.type == type && back.version == envelope.version)
            #expect(back.causationId == envelope.causationId && back.correlationId == "c")
            #expect(back.occurredAt == envelope.occurredAt)
            #expect(back.data == data)
        }
        let order = UUID()
        try roundTrip(
            .orderPlace,
            PlaceOrder(
                orderId: order, customerId: "c", lines: [.init(sku: "a", quantity: 2)], payment: .init(token: "t")))
        try roundTrip(.orderPlaced, OrderPlaced(orderId: order, customerId: "c", lines: [.init(sku: "a", quantity: 1)]))
        try roundTrip(
            .stockReserved,
            StockReserved(orderId: order, lines: [.init(sku: "a", quantity: 1, unitPriceCents: 5)], totalCents: 5))
        try roundTrip(.paymentRequested, PaymentRequested(orderId: order, amountCents: 5, token: "t"))
        try roundTrip(.paymentSettled, PaymentSettled(orderId: order, amountCents: 5, reference: "r"))
        try roundTrip(.orderCancelled, OrderEnded(orderId: order, reason: "because"))
        try roundTrip(.stockAdjust, AdjustStock(sku: "a", delta: -3))
        try roundTrip(.productCreate, CreateProduct(sku: "a", name: "A", priceCents: 1, stock: 2))
    }

    @Test(
        "occurred_at is read as RFC 3339: any fraction, Z or an offset, either case; anything else is invalid data",
        arguments: [
            ("2025-11-24T16:00:00Z", 1_764_000_000.0),
            ("2025-11-24T17:30:00.5+01:30", 1_764_000_000.5),
            ("2025-11-24t16:00:00.125z", 1_764_000_000.125),
            ("2025-11-24T12:00:00-04:00", 1_764_000_000.0),
            ("1999-12-31T23:59:59Z", 946_684_799.0),
            ("2024-02-29T00:00:00Z", 1_709_164_800.0),
            ("2025-13-01T00:00:00Z", nil),
            ("2025-11-24 16:00:00Z", nil),
            ("2025-11-24T16:00:00", nil),
            ("2025-11-24T16:00:00.Z", nil),
        ] as [(String, Double?)])
    func occurredAt(text: String, seconds: Double?) {
        let body =
            #"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.cancelled","version":1,"occurred_at":""#
            + text + #"","correlation_id":"o","data":{"order_id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","reason":"r"}}"#
        do {
            let envelope = try EnvelopeCodec.decode(Array(body.utf8), as: OrderEnded.self)
            #expect(envelope.occurredAt.timeIntervalSince1970 == seconds, "\(text)")
            #expect(envelope.causationId == nil)
        } catch {
            #expect(seconds == nil && error.kind == .invalidData, "\(text): \(error)")
        }
    }

    @Test("times are written as Foundation's ISO 8601 style writes them, and what is read is written back the same")
    func timesMatchFoundation() {
        var random = SystemRandomNumberGenerator()
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var dates = [0, 951_782_400, 1_709_164_800.999, 4_102_444_799.5, -86_400.25].map(
            Date.init(timeIntervalSince1970:))
        for _ in 0..<50_000 {
            dates.append(Date(timeIntervalSince1970: Double.random(in: 0...4_102_444_800, using: &random)))
        }
        for date in dates {
            let written = RFC3339.string(date)
            let interval = date.timeIntervalSince1970
            // Foundation truncates; within a microsecond of the next millisecond this writes that one.
            let fraction = (interval - interval.rounded(.down)) * 1000
            let nearNext = (fraction + 0.001).rounded(.down) > fraction.rounded(.down)
            #expect(written == date.formatted(style) || nearNext, "\(interval)")
            #expect(RFC3339.string(RFC3339.date(written)!) == written, "\(written)")
        }
        // Outside four-digit years Foundation spells it (and its calendar is Julian before 1582).
        for seconds in [-62_167_221_600.0, 253_402_300_800] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(RFC3339.string(date) == date.formatted(style))
        }
    }

    @Test(
        "the small parser gives each poison body the same reason Codable does",
        arguments: [
            ("not json at all", EnvelopeError.Kind.malformed),
            (#"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.placed"}"#, .malformed),
            (#"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.teleported","version":1}"#, .unknownType),
            (#"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.placed","version":2}"#, .unsupportedVersion),
            (
                #"{"id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","type":"order.placed","version":1,"occurred_at":"2025-11-24T16:00:00Z","correlation_id":"o","causation_id":null,"data":{"order_id":"7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11","customer_id":5,"lines":[]}}"#,
                .invalidData
            ),
        ])
    func readablePoison(body: String, kind: EnvelopeError.Kind) {
        do {
            _ = try EnvelopeCodec.decode(Array(body.utf8), as: OrderPlaced.self)
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.kind == kind)
            #expect(!error.detail.isEmpty)
        }
    }

    @Test("commands travel on depot.commands and events on depot.events")
    func exchanges() {
        #expect(MessageType.orderPlace.exchange == "depot.commands")
        #expect(MessageType.orderPlaced.exchange == "depot.events")
        #expect(MessageType.allCases.filter(\.isCommand).count == 6)
        // The contract's 14 events, plus payment.requested (orders asks payments to charge) and
        // payment.refunded (a charge that answered after its order was cancelled).
        #expect(MessageType.allCases.filter { !$0.isCommand }.count == 16)
    }
}

@Suite("UUIDs in lowercase")
struct CanonicalUUIDTests {
    @Test("canonicalText is RFC 9562's lowercase form and reads back in either case")
    func text() throws {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(id.canonicalText == id.uuidString.lowercased())
            #expect(UUID(canonicalText: id.canonicalText) == id)
            #expect(UUID(canonicalText: id.uuidString) == id)
        }
        let mixed = "7BaC088c-1d2E-4f3a-9B8c-0D1e2F3a4B5c"
        #expect(UUID(canonicalText: mixed)?.canonicalText == mixed.lowercased())
        #expect(UUID(canonicalText: "7bac088c-1d2e-4f3a-9b8c-0d1e2f3a4b5") == nil)
        #expect(UUID(canonicalText: "7bac088cx1d2e-4f3a-9b8c-0d1e2f3a4b5c") == nil)
    }

    @Test("every UUID in an encoded message is lowercase: id, causation_id and the data's ids")
    func messagesWriteLowercase() throws {
        let order = UUID()
        let causation = UUID()
        let envelope = Envelope(
            type: .stockReserved, correlationId: order.canonicalText, causationId: causation,
            data: PricedOrder(
                orderId: order, lines: [PricedLine(sku: "A-1", quantity: 1, unitPriceCents: 5)], totalCents: 5))
        let text = String(decoding: try EnvelopeCodec.encode(envelope), as: UTF8.self)
        #expect(text.contains(#""id":"\#(envelope.id.canonicalText)""#))
        #expect(text.contains(#""causation_id":"\#(causation.canonicalText)""#))
        #expect(text.contains(#""order_id":"\#(order.canonicalText)""#))
        #expect(
            !text.contains(order.uuidString) && !text.contains(causation.uuidString)
                && !text.contains(envelope.id.uuidString))
        // Read back with the ids in upper case: input is case-insensitive.
        let shouted = text.replacingOccurrences(of: order.canonicalText, with: order.uuidString)
            .replacingOccurrences(of: envelope.id.canonicalText, with: envelope.id.uuidString)
        let back = try EnvelopeCodec.decode(Array(shouted.utf8), as: PricedOrder.self)
        #expect(back.data.orderId == order && back.id == envelope.id)
    }
}
