import DepotModel
import Foundation
import Postgres

/// One row of `projections.orders`: the one definition of an order's read model. The projector
/// folds events into it (`OrderRow.placed`, `applying`) and writes it; the edge reads it with
/// `columns` and `init(_:)` and serves its JSON encoding as the order view of
/// docs/interface.md §3 (the OpenAPI `Order` schema is checked against that encoding).
public struct OrderRow: Sendable, Hashable {
    /// `payment.status` in the view.
    public enum PaymentStatus: String, Sendable, Codable, CaseIterable {
        case none, pending, settled, declined
    }

    public struct Line: Sendable, Hashable {
        public var sku: String
        public var quantity: Int
        /// Nil until inventory has priced the order (at reservation).
        public var unitPriceCents: Int?

        public init(sku: String, quantity: Int, unitPriceCents: Int? = nil) {
            self.sku = sku
            self.quantity = quantity
            self.unitPriceCents = unitPriceCents
        }
    }

    public var id: UUID
    public var customerId: String
    public var status: OrderStatus
    public var lines: [Line]
    /// Nil until reservation.
    public var totalCents: Int?
    public var paymentStatus: PaymentStatus
    /// Set once the payment settled.
    public var paymentReference: String?
    /// Set on every rejected and cancelled order.
    public var reason: String?
    /// When `order.placed` occurred.
    public var createdAt: Date
    /// When the newest event of the order occurred.
    public var updatedAt: Date
    /// The number of the order's events applied.
    public var version: Int
    /// The log position of the newest event applied.
    public var position: Int64

    public init(
        id: UUID, customerId: String, status: OrderStatus, lines: [Line], totalCents: Int?,
        paymentStatus: PaymentStatus,
        paymentReference: String?, reason: String?, createdAt: Date, updatedAt: Date, version: Int, position: Int64
    ) {
        self.id = id
        self.customerId = customerId
        self.status = status
        self.lines = lines
        self.totalCents = totalCents
        self.paymentStatus = paymentStatus
        self.paymentReference = paymentReference
        self.reason = reason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
        self.position = position
    }

    // MARK: - The table

    /// The columns `init(_:)` reads, in its order: `SELECT \(unescaped: OrderRow.columns) FROM projections.orders …`.
    public static let columns =
        "id, customer_id, status, lines, total_cents, payment_status, payment_reference, reason, created_at, updated_at, version, position"

    /// A row selected with `columns`.
    public init(_ row: PostgresRow) throws {
        id = try row.decode(0)
        customerId = try row.decode(1)
        status = try Self.decodeEnum(OrderStatus.self, try row.decode(2), column: "status")
        lines = try Self.lines(fromJSON: try row.decode(3, as: PostgresJSON.self).bytes)
        totalCents = try row.decode(4, as: Int?.self)
        paymentStatus = try Self.decodeEnum(PaymentStatus.self, try row.decode(5), column: "payment_status")
        paymentReference = try row.decode(6, as: String?.self)
        reason = try row.decode(7, as: String?.self)
        createdAt = try row.decode(8)
        updatedAt = try row.decode(9)
        version = try row.decode(10)
        position = try row.decode(11)
    }

    /// A column holding text that is not one of the enum's values.
    public struct UnknownValue: Error, CustomStringConvertible {
        public var column: String
        public var value: String
        public var description: String { "projections.orders.\(column) holds \(value.debugDescription)" }
    }

    static func decodeEnum<T: RawRepresentable<String>>(_ type: T.Type, _ text: String, column: String) throws -> T {
        guard let value = T(rawValue: text) else { throw UnknownValue(column: column, value: text) }
        return value
    }

    /// The `lines` column (`[{sku, quantity, unit_price_cents?}]`), read without Codable.
    static func lines(fromJSON bytes: [UInt8]) throws -> [Line] {
        guard case .array(let items) = try JSONValue.parse(bytes) else {
            throw UnknownValue(column: "lines", value: "not an array")
        }
        return try items.map { item in
            guard case .string(let sku)? = item["sku"], case .integer(let quantity)? = item["quantity"] else {
                throw UnknownValue(column: "lines", value: String(decoding: item.encoded(), as: UTF8.self))
            }
            var price: Int?
            if case .integer(let cents)? = item["unit_price_cents"] { price = cents }
            return Line(sku: sku, quantity: quantity, unitPriceCents: price)
        }
    }

    /// The row as `jsonb_populate_recordset` reads it, written without JSONEncoder (a rebuild
    /// writes every order); times as PostgreSQL stores them, so a row read back is equal.
    var record: JSONValue {
        .object([
            .init("id", .string(id.canonicalText)), .init("customer_id", .string(customerId)),
            .init("status", .string(status.rawValue)),
            .init(
                "lines",
                .array(
                    lines.map { line in
                        .object(
                            [.init("sku", .string(line.sku)), .init("quantity", .integer(line.quantity))]
                                + (line.unitPriceCents.map { [.init("unit_price_cents", .integer($0))] } ?? []))
                    })),
            .init("total_cents", totalCents.map { .integer($0) } ?? .null),
            .init("payment_status", .string(paymentStatus.rawValue)),
            .init("payment_reference", paymentReference.map { .string($0) } ?? .null),
            .init("reason", reason.map { .string($0) } ?? .null),
            .init("created_at", .string(createdAt.postgresTimestampText)),
            .init("updated_at", .string(updatedAt.postgresTimestampText)),
            .init("version", .integer(version)), .init("position", .integer(Int(position))),
        ])
    }
}

// MARK: - The view

/// The order view of docs/interface.md §3: `{id, customer_id, status, lines:[{sku, quantity,
/// unit_price_cents}], total_cents, payment:{status, reference?}, reason?, created_at,
/// updated_at, version}`; `unit_price_cents` and `total_cents` are null until reservation.
extension OrderRow: Encodable {
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case id, status, lines, payment, reason, version
        case customerId = "customer_id"
        case totalCents = "total_cents"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    enum LineKeys: String, CodingKey {
        case sku, quantity
        case unitPriceCents = "unit_price_cents"
    }

    enum PaymentKeys: String, CodingKey {
        case status, reference
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.canonicalText, forKey: .id)
        try container.encode(customerId, forKey: .customerId)
        try container.encode(status, forKey: .status)
        var lineList = container.nestedUnkeyedContainer(forKey: .lines)
        for line in lines {
            var item = lineList.nestedContainer(keyedBy: LineKeys.self)
            try item.encode(line.sku, forKey: .sku)
            try item.encode(line.quantity, forKey: .quantity)
            try item.encode(line.unitPriceCents, forKey: .unitPriceCents)  // null until priced
        }
        try container.encode(totalCents, forKey: .totalCents)  // null until priced
        var payment = container.nestedContainer(keyedBy: PaymentKeys.self, forKey: .payment)
        try payment.encode(paymentStatus, forKey: .status)
        try payment.encodeIfPresent(paymentReference, forKey: .reference)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(version, forKey: .version)
    }
}
