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
