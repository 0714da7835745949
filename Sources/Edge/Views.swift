import DepotModel
import Foundation
import Postgres

/// `GET /v1/products/{sku}` (docs/interface.md §3).
struct ProductView: Encodable, Sendable {
    var sku: String
    var name: String
    var priceCents: Int
    var stockAvailable: Int
    var stockReserved: Int
    var discontinued: Bool
    var version: Int
    var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case sku, name, discontinued, version
        case priceCents = "price_cents"
        case stockAvailable = "stock_available"
        case stockReserved = "stock_reserved"
        case updatedAt = "updated_at"
    }

    static let columns = "sku, name, price_cents, stock_available, stock_reserved, discontinued, version, updated_at"

    init(_ row: PostgresRow) throws {
        sku = try row.decode(0)
        name = try row.decode(1)
        priceCents = try row.decode(2)
        stockAvailable = try row.decode(3)
        stockReserved = try row.decode(4)
        discontinued = try row.decode(5)
        version = try row.decode(6)
        updatedAt = try row.decode(7)
    }
}

/// `GET /v1/orders/{id}` (docs/interface.md §3).
struct OrderView: Encodable, Sendable {
    struct Line: Codable, Sendable {
        var sku: String
        var quantity: Int
        var unitPriceCents: Int?

        enum CodingKeys: String, CodingKey {
            case sku, quantity
            case unitPriceCents = "unit_price_cents"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(sku, forKey: .sku)
            try container.encode(quantity, forKey: .quantity)
            try container.encode(unitPriceCents, forKey: .unitPriceCents)  // null until priced
        }
    }

    struct Payment: Encodable, Sendable {
        var status: String
        var reference: String?
    }

    var id: UUID
    var customerId: String
    var status: String
    var lines: [Line]
    var totalCents: Int?
    var payment: Payment
    var reason: String?
    var createdAt: Date
    var updatedAt: Date
    var version: Int

    enum CodingKeys: String, CodingKey {
        case id, status, lines, payment, reason, version
        case customerId = "customer_id"
        case totalCents = "total_cents"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.canonicalText, forKey: .id)
        try container.encode(customerId, forKey: .customerId)
        try container.encode(status, forKey: .status)
        try container.encode(lines, forKey: .lines)
        try container.encode(totalCents, forKey: .totalCents)
        try container.encode(payment, forKey: .payment)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(version, forKey: .version)
    }

    static let columns = "id, customer_id, status, lines, total_cents, payment_status, payment_reference, reason, created_at, updated_at, version"

    var isFinal: Bool { ["confirmed", "rejected", "cancelled"].contains(status) }

    init(_ row: PostgresRow) throws {
        id = try row.decode(0)
        customerId = try row.decode(1)
        status = try row.decode(2)
        lines = try row.decode(3, as: PostgresJSON.self).decode([Line].self)
        totalCents = try row.decode(4, as: Int?.self)
        payment = Payment(status: try row.decode(5), reference: try row.decode(6, as: String?.self))
        reason = try row.decode(7, as: String?.self)
        createdAt = try row.decode(8)
        updatedAt = try row.decode(9)
        version = try row.decode(10)
    }
}

/// A page of a listing: `{items, next}` with an opaque cursor (null on the last page).
struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    var items: [Item]
    var next: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(next, forKey: .next)
    }

    enum CodingKeys: String, CodingKey { case items, next }
}

/// The 202 answer: the command is durably on the broker.
struct Accepted: Encodable, Sendable {
    var id: String
    var status = "accepted"
}

/// Opaque keyset cursors: base64url of the last item's sort key.
enum Cursor {
    static func encode(_ parts: [String]) -> String {
        Data(parts.joined(separator: "\u{1F}").utf8).base64URLEncodedString()
    }

    static func decode(_ cursor: String, parts: Int) throws -> [String] {
        guard cursor.count <= 512, let data = Data(base64URLEncoded: cursor), let text = String(data: data, encoding: .utf8) else {
            throw Problem.invalid("after", "is not a cursor this API returned")
        }
        let values = text.components(separatedBy: "\u{1F}")
        guard values.count == parts else { throw Problem.invalid("after", "is not a cursor this API returned") }
        return values
    }
}
