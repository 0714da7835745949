import DepotModel
import Foundation

/// What the projections read from one event, decoded once per batch.
struct EventFacts: Sendable {
    enum Data: Sendable {
        case placed(OrderPlaced)
        /// stock.reserved and order.confirmed.
        case priced(PricedOrder)
        case settled(PaymentSettled)
        /// The reason of order.rejected or order.cancelled.
        case reason(String)
        case released(StockReleased)
        case created(ProductCreated)
        case updated(ProductUpdated)
        case discontinued
        case adjusted(StockAdjusted)
        /// Nothing in the data matters (history and version only), or not a projected event.
        case none
    }

    let event: StoredEvent
    let data: Data
    /// The order's id in lower case, for the order events of an order (a uuid correlation id).
    let orderKey: String?

    static let orderEvents: Set<MessageType> = [
        .orderPlaced, .stockReserved, .stockRejected, .stockReleased, .paymentRequested, .paymentSettled,
        .paymentDeclined,
        .paymentRefunded, .orderConfirmed, .orderRejected, .orderCancelled,
    ]

    init(_ event: StoredEvent) throws(EnvelopeError) {
        self.event = event
        orderKey =
            Self.orderEvents.contains(event.type) && UUID(canonicalText: event.correlationId) != nil
            ? event.correlationId.lowercased() : nil
        let body = event.body
        data =
            switch event.type {
            case .orderPlaced: .placed(try EnvelopeCodec.readData(body))
            case .stockReserved, .orderConfirmed: .priced(try EnvelopeCodec.readData(body))
            case .paymentSettled: .settled(try EnvelopeCodec.readData(body))
            case .orderRejected, .orderCancelled: .reason(try EnvelopeCodec.readData(body, as: OrderReason.self).reason)
            case .stockReleased: .released(try EnvelopeCodec.readData(body))
            case .productCreated: .created(try EnvelopeCodec.readData(body))
            case .productUpdated: .updated(try EnvelopeCodec.readData(body))
            case .productDiscontinued: .discontinued
            case .stockAdjusted: .adjusted(try EnvelopeCodec.readData(body))
            default: .none
            }
    }

    /// The skus whose stock this event moves (their product views change too).
    var skusMoved: [String] {
        switch (event.type, data) {
        case (.stockReserved, .priced(let order)), (.orderConfirmed, .priced(let order)): order.lines.map(\.sku)
        case (_, .released(let released)): released.lines.map(\.sku)
        default: []
        }
    }
}
