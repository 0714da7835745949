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

    @Test("each kind of poison body gets its own reason", arguments: [
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
