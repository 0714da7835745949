import DepotModel
import Foundation
import Postgres

/// `GET /v1/products/{sku}` (docs/interface.md §3).
struct ProductView: Encodable, Sendable, Hashable {
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
}

extension ProductView {
    /// A row selected with `columns`.
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

/// `GET /readyz`: each dependency `ok` or `unreachable`, and the verdict.
struct Readiness: Encodable, Sendable {
    var broker: String
    var database: String
    var readDatabase: String
    var status: String

    init(broker: Bool, database: Bool, readDatabase: Bool) {
        self.broker = broker ? "ok" : "unreachable"
        self.database = database ? "ok" : "unreachable"
        self.readDatabase = readDatabase ? "ok" : "unreachable"
        status = broker && database && readDatabase ? "ready" : "not ready"
    }

    var isReady: Bool { status == "ready" }

    enum CodingKeys: String, CodingKey {
        case broker, database, status
        case readDatabase = "read_database"
    }
}
