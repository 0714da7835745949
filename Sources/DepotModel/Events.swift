import Foundation

// The data of every event, past tense, as it travels on `depot.events`.

public typealias ProductCreated = ProductDetails

/// Carries the product's new name and price, whichever changed.
public struct ProductUpdated: Codable, Sendable, Hashable {
    public var sku: String
    public var name: String
    public var priceCents: Int
    public init(sku: String, name: String, priceCents: Int) {
        self.sku = sku
        self.name = name
        self.priceCents = priceCents
    }
    enum CodingKeys: String, CodingKey {
        case sku, name
        case priceCents = "price_cents"
    }
}

public struct ProductDiscontinued: Codable, Sendable, Hashable {
    public var sku: String
    public init(sku: String) { self.sku = sku }
}

public struct StockAdjusted: Codable, Sendable, Hashable {
    public var sku: String
    public var delta: Int
    /// Available stock after the adjustment.
    public var available: Int
    public init(sku: String, delta: Int, available: Int) {
        self.sku = sku
        self.delta = delta
        self.available = available
    }
}

public struct StockAdjustmentRejected: Codable, Sendable, Hashable {
    public var sku: String
    public var delta: Int
    /// Available stock when the adjustment was refused (0 for an unknown sku).
    public var available: Int
    public var reason: String
    public init(sku: String, delta: Int, available: Int, reason: String) {
        self.sku = sku
        self.delta = delta
        self.available = available
        self.reason = reason
    }
}

public struct OrderPlaced: Codable, Sendable, Hashable {
    public var orderId: UUID
    public var customerId: String
    public var lines: [OrderLine]
    public init(orderId: UUID, customerId: String, lines: [OrderLine]) {
        self.orderId = orderId
        self.customerId = customerId
        self.lines = lines
    }
    enum CodingKeys: String, CodingKey {
        case lines
        case orderId = "order_id"
        case customerId = "customer_id"
    }
}

/// An order with the unit prices inventory charged: `stock.reserved` and `order.confirmed`.
public struct PricedOrder: Codable, Sendable, Hashable {
    public var orderId: UUID
    public var lines: [PricedLine]
    public var totalCents: Int
    public init(orderId: UUID, lines: [PricedLine], totalCents: Int) {
        self.orderId = orderId
        self.lines = lines
        self.totalCents = totalCents
    }
    enum CodingKeys: String, CodingKey {
        case lines
        case orderId = "order_id"
        case totalCents = "total_cents"
    }
}

public typealias StockReserved = PricedOrder
public typealias OrderConfirmed = PricedOrder

/// Nothing was reserved: the reason names the first line that could not be.
public typealias StockRejected = OrderReason

public struct StockReleased: Codable, Sendable, Hashable {
    public var orderId: UUID
    public var lines: [OrderLine]
    public init(orderId: UUID, lines: [OrderLine]) {
        self.orderId = orderId
        self.lines = lines
    }
    enum CodingKeys: String, CodingKey {
        case lines
        case orderId = "order_id"
    }
}

/// Orders asks payments to charge a reserved order.
public struct PaymentRequested: Codable, Sendable, Hashable {
    public var orderId: UUID
    public var amountCents: Int
    public var token: String
    public init(orderId: UUID, amountCents: Int, token: String) {
        self.orderId = orderId
        self.amountCents = amountCents
        self.token = token
    }
    enum CodingKeys: String, CodingKey {
        case token
        case orderId = "order_id"
        case amountCents = "amount_cents"
    }
}

public struct PaymentSettled: Codable, Sendable, Hashable {
    public var orderId: UUID
    public var amountCents: Int
    public var reference: String
    public init(orderId: UUID, amountCents: Int, reference: String) {
        self.orderId = orderId
        self.amountCents = amountCents
        self.reference = reference
    }
    enum CodingKeys: String, CodingKey {
        case reference
        case orderId = "order_id"
        case amountCents = "amount_cents"
    }
}

public typealias PaymentDeclined = OrderReason

/// A charge given back because its order was cancelled before the payment answered.
public typealias PaymentRefunded = PaymentSettled

/// An order and a reason: `stock.rejected`, `payment.declined`, and `order.rejected` /
/// `order.cancelled` (an order that ended without being confirmed).
public struct OrderReason: Codable, Sendable, Hashable {
    public var orderId: UUID
    public var reason: String
    public init(orderId: UUID, reason: String) {
        self.orderId = orderId
        self.reason = reason
    }
    enum CodingKeys: String, CodingKey {
        case reason
        case orderId = "order_id"
    }
}

public typealias OrderEnded = OrderReason
