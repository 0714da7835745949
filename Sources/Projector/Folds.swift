import DepotModel
import Foundation
import Postgres

// What each event does to the rows of the projections, as pure functions: `Projections` reads
// the rows a batch touches, folds the batch into them with these, and writes back the rows that
// changed. Every value comes from the events (times are their `occurred_at`), so folding the log
// again in order gives the same rows.

extension OrderRow {
    /// The row `order.placed` creates.
    static func placed(_ placed: OrderPlaced, by event: StoredEvent) -> OrderRow {
        OrderRow(
            id: placed.orderId, customerId: placed.customerId, status: .pending,
            lines: placed.lines.map { Line(sku: $0.sku, quantity: $0.quantity) }, totalCents: nil, paymentStatus: .none,
            paymentReference: nil, reason: nil, createdAt: event.occurredAt, updatedAt: event.occurredAt, version: 1,
            position: event.position)
    }

    /// The row after one of the order's later events (any but `order.placed`): every event moves
    /// the version, the update time and the position; some change the status or the payment.
    func applying(_ fact: EventFacts) -> OrderRow {
        var order = self
        switch (fact.event.type, fact.data) {
        case (.stockReserved, .priced(let reserved)):
            // A reservation can land after the customer's cancel: the order stays cancelled.
            if order.status == .pending { order.status = .reserved }
            order.lines = reserved.lines.map {
                Line(sku: $0.sku, quantity: $0.quantity, unitPriceCents: $0.unitPriceCents)
            }
            order.totalCents = reserved.totalCents
        case (.paymentRequested, _): order.paymentStatus = .pending
        case (.paymentSettled, .settled(let settled)):
            order.paymentStatus = .settled
            order.paymentReference = settled.reference
        case (.paymentDeclined, _): order.paymentStatus = .declined
        case (.orderConfirmed, _): order.status = .confirmed
        case (.orderRejected, .reason(let reason)):
            order.status = .rejected
            order.reason = reason
        case (.orderCancelled, .reason(let reason)):
            order.status = .cancelled
            order.reason = reason
        default: break  // stock.rejected, stock.released, payment.refunded: history and version only
        }
        order.version += 1
        order.updatedAt = fact.event.occurredAt
        order.position = fact.event.position
        return order
    }
}

extension Projections {
    /// Folds order events, in log order, into `rows` (keyed by the order id in lower case, holding
    /// the rows the database has for the orders concerned) and returns the keys of the rows that
    /// changed. An order is placed once; an event of an order not placed (yet) changes nothing.
    static func foldOrders(_ facts: [EventFacts], into rows: inout [String: OrderRow]) -> Set<String> {
        var changed: Set<String> = []
        for fact in facts {
            guard let key = fact.orderKey else { continue }
            if case .placed(let placed) = fact.data {
                guard rows[key] == nil else { continue }  // placed once
                rows[key] = OrderRow.placed(placed, by: fact.event)
            } else {
                guard let order = rows[key] else { continue }  // not placed (yet): nothing to update
                rows[key] = order.applying(fact)
            }
            changed.insert(key)
        }
        return changed
    }

    /// What an event does to the catalog: the skus it concerns and the quantity for each (0 for
    /// catalog events; one order's lines may name a sku twice); nil when it concerns no product.
    static func productLines(_ fact: EventFacts) -> [(sku: String, quantity: Int)]? {
        switch fact.data {
        case .created, .updated, .discontinued, .adjusted: [(fact.event.correlationId, 0)]
        case .priced(let order) where fact.event.type == .stockReserved || fact.event.type == .orderConfirmed:
            order.lines.map { (sku: $0.sku, quantity: $0.quantity) }
        case .released(let released): released.lines.map { (sku: $0.sku, quantity: $0.quantity) }
        default: nil
        }
    }

    /// Folds catalog and stock events, in log order, into `rows` (keyed by sku, holding the rows
    /// the database has for the skus concerned) and returns the skus whose rows changed. A product
    /// is created once; an event for an unknown sku changes nothing.
    static func foldProducts(_ facts: [EventFacts], into rows: inout [String: ProductRow]) -> Set<String> {
        var changed: Set<String> = []
        for fact in facts {
            guard let lines = productLines(fact) else { continue }
            let event = fact.event
            if case .created(let created) = fact.data {
                guard rows[event.correlationId] == nil else { continue }
                rows[created.sku] = ProductRow.created(created, by: event)
                changed.insert(created.sku)
                continue
            }
            var quantities: [String: Int64] = [:]
            for line in lines { quantities[line.sku, default: 0] += Int64(line.quantity) }
            for (sku, quantity) in quantities {
                guard let product = rows[sku] else { continue }  // unknown product: nothing to update
                rows[sku] = product.applying(fact, quantity: quantity)
                changed.insert(sku)
            }
        }
        return changed
    }
}

/// One row of `projections.products`, as JSON for `jsonb_populate_recordset` (and read back with
/// `row_to_json`); `stock_sold` is kept for the conservation checks, the edge does not show it.
struct ProductRow: Codable, Hashable {
    var sku: String
    var name: String
    var priceCents: Int
    var stockAvailable: Int64
    var stockReserved: Int64
    var stockSold: Int64
    var discontinued: Bool
    var version: Int64
    var updatedAt: String
    var position: Int64

    enum CodingKeys: String, CodingKey {
        case sku, name, discontinued, version, position
        case priceCents = "price_cents"
        case stockAvailable = "stock_available"
        case stockReserved = "stock_reserved"
        case stockSold = "stock_sold"
        case updatedAt = "updated_at"
    }

    /// The row `product.created` creates.
    static func created(_ created: ProductCreated, by event: StoredEvent) -> ProductRow {
        ProductRow(
            sku: created.sku, name: created.name, priceCents: created.priceCents,
            stockAvailable: Int64(created.stock),
            stockReserved: 0, stockSold: 0, discontinued: false, version: 1,
            updatedAt: event.occurredAt.postgresTimestampText,
            position: event.position)
    }

    /// The row after an event that moves `quantity` of this sku (0 for catalog events).
    func applying(_ fact: EventFacts, quantity: Int64) -> ProductRow {
        var product = self
        switch (fact.event.type, fact.data) {
        case (_, .updated(let updated)):
            product.name = updated.name
            product.priceCents = updated.priceCents
        case (_, .discontinued): product.discontinued = true
        case (_, .adjusted(let adjusted)): product.stockAvailable += Int64(adjusted.delta)
        case (.stockReserved, _):
            product.stockAvailable -= quantity
            product.stockReserved += quantity
        case (.stockReleased, _):
            product.stockAvailable += quantity
            product.stockReserved -= quantity
        case (.orderConfirmed, _):
            product.stockReserved -= quantity
            product.stockSold += quantity
        default: break
        }
        product.version += 1
        product.updatedAt = fact.event.occurredAt.postgresTimestampText
        product.position = fact.event.position
        return product
    }
}
