import Foundation

/// One line of an order as the customer asked for it.
public struct OrderLine: Codable, Sendable, Hashable {
    public var sku: String
    public var quantity: Int
    public init(sku: String, quantity: Int) {
        self.sku = sku
        self.quantity = quantity
    }
}

/// A line with the unit price inventory charged when it reserved the stock.
public struct PricedLine: Codable, Sendable, Hashable {
    public var sku: String
    public var quantity: Int
    public var unitPriceCents: Int

    public init(sku: String, quantity: Int, unitPriceCents: Int) {
        self.sku = sku
        self.quantity = quantity
        self.unitPriceCents = unitPriceCents
    }

    enum CodingKeys: String, CodingKey {
        case sku, quantity
        case unitPriceCents = "unit_price_cents"
    }
}

/// `order.place`: the edge chose `order_id`, so a repeated request names the same order.
public struct PlaceOrder: Codable, Sendable, Hashable {
    public struct Payment: Codable, Sendable, Hashable {
        public var token: String
        public init(token: String) { self.token = token }
    }
    public var orderId: UUID
    public var customerId: String
    public var lines: [OrderLine]
    public var payment: Payment

    public init(orderId: UUID, customerId: String, lines: [OrderLine], payment: Payment) {
        self.orderId = orderId
        self.customerId = customerId
        self.lines = lines
        self.payment = payment
    }

    enum CodingKeys: String, CodingKey {
        case lines, payment
        case orderId = "order_id"
        case customerId = "customer_id"
    }
}

/// `order.cancel`.
public struct CancelOrder: Codable, Sendable, Hashable {
    public var orderId: UUID
    public var reason: String?
    public init(orderId: UUID, reason: String? = nil) {
        self.orderId = orderId
        self.reason = reason
    }
    enum CodingKeys: String, CodingKey {
        case reason
        case orderId = "order_id"
    }
}

/// A new product: the data of `product.create` and of `product.created`.
public struct ProductDetails: Codable, Sendable, Hashable {
    public var sku: String
    public var name: String
    public var priceCents: Int
    public var stock: Int

    public init(sku: String, name: String, priceCents: Int, stock: Int) {
        self.sku = sku
        self.name = name
        self.priceCents = priceCents
        self.stock = stock
    }

    enum CodingKeys: String, CodingKey {
        case sku, name, stock
        case priceCents = "price_cents"
    }
}

public typealias CreateProduct = ProductDetails

/// `product.update`: only the fields given change.
public struct UpdateProduct: Codable, Sendable, Hashable {
    public var sku: String
    public var name: String?
    public var priceCents: Int?

    public init(sku: String, name: String? = nil, priceCents: Int? = nil) {
        self.sku = sku
        self.name = name
        self.priceCents = priceCents
    }

    enum CodingKeys: String, CodingKey {
        case sku, name
        case priceCents = "price_cents"
    }
}

/// `product.discontinue`.
public struct DiscontinueProduct: Codable, Sendable, Hashable {
    public var sku: String
    public init(sku: String) { self.sku = sku }
}

/// `stock.adjust`: restock (+) or write-off (−).
public struct AdjustStock: Codable, Sendable, Hashable {
    public var sku: String
    public var delta: Int
    public init(sku: String, delta: Int) {
        self.sku = sku
        self.delta = delta
    }
}
