/// Every command and event type docs/interface.md §4 names; the raw value is the routing key.
public enum MessageType: String, Sendable, CaseIterable, Codable {
    // Commands, on `depot.commands` (imperative).
    case orderPlace = "order.place"
    case orderCancel = "order.cancel"
    case productCreate = "product.create"
    case productUpdate = "product.update"
    case productDiscontinue = "product.discontinue"
    case stockAdjust = "stock.adjust"
    // Events, on `depot.events` (past tense).
    case productCreated = "product.created"
    case productUpdated = "product.updated"
    case productDiscontinued = "product.discontinued"
    case stockAdjusted = "stock.adjusted"
    case stockAdjustmentRejected = "stock.adjustment_rejected"
    case orderPlaced = "order.placed"
    case stockReserved = "stock.reserved"
    case stockRejected = "stock.rejected"
    case stockReleased = "stock.released"
    case paymentRequested = "payment.requested"
    case paymentSettled = "payment.settled"
    case paymentDeclined = "payment.declined"
    case paymentRefunded = "payment.refunded"
    case orderConfirmed = "order.confirmed"
    case orderRejected = "order.rejected"
    case orderCancelled = "order.cancelled"

    public var isCommand: Bool {
        switch self {
        case .orderPlace, .orderCancel, .productCreate, .productUpdate, .productDiscontinue, .stockAdjust: true
        default: false
        }
    }

    /// The exchange this type travels on.
    public var exchange: String { isCommand ? Exchanges.commands : Exchanges.events }

    /// The newest schema version of this type that this build writes and reads.
    public var currentVersion: Int { 1 }
}

/// Depot's exchange names (docs/interface.md §4).
public enum Exchanges {
    public static let commands = "depot.commands"
    public static let events = "depot.events"
    public static let dead = "depot.dead"
}
