import DepotModel
import Foundation
import Messaging
import Metrics
import Postgres

/// The projector: appends every event to the log once and updates the projections in the same
/// transaction, a batch at a time.
///
/// Its queue has a single active consumer: replicas stand by, and the one consuming sees
/// events in the order they were published, so the log (and every projection) keeps the
/// events of one order in the order they happened.
public struct ProjectorHandler: BatchHandler {
    public static let queue = QueueSpec(
        name: "depot.projector", bindings: [.init(exchange: Exchanges.events, routingKey: "#")],
        singleActiveConsumer: true)

    let projections: Projections

    /// NOTIFY channel carrying, after each batch, the correlation ids it changed ("*": too many to list).
    public static let channel = "depot_projections"

    public init(projections: Projections = Projections()) {
        self.projections = projections
    }

    /// Made on first use, after the process bootstrapped its metrics.
    static let projectionDelay = Timer(label: "depot_projection_delay_seconds")

    public func handle(_ batch: [IncomingMessage], on connection: PostgresConnection) async throws {
        // Every event's data must fit its type before it enters the log, used by a projection or not.
        for message in batch where !message.type.isCommand { try Self.validate(message) }
        try await EventLog.lock(on: connection)
        let events = try await EventLog.append(batch.filter { !$0.type.isCommand }, on: connection)
        let prepared = try Projections.prepare(events)
        try await projections.apply(prepared, on: connection)
        if let last = events.last {
            try await projections.checkpoint(last.position, on: connection)
            // How long the newest event took from its occurrence to the projections.
            Self.projectionDelay.recordNanoseconds(Int64(max(0, Date().timeIntervalSince(last.occurredAt)) * 1e9))
            // Tells waiting readers (the edge's `Prefer: wait`) which orders and products changed.
            let keys = Set(events.map(\.correlationId)).union(prepared.skusMoved)
            let changed = keys.sorted().joined(separator: ",")
            connection.executeLater("SELECT pg_notify(\(Self.channel), \(changed.utf8.count < 7_000 ? changed : "*"))")
        }
    }

    /// The skus whose stock an order's event moves (their product views change too).
    public static func productsMoved(by event: StoredEvent) throws -> [String] {
        try EventFacts(event).skusMoved
    }

    /// Throws `invalid_data` when an event's data does not fit its type.
    static func validate(_ message: IncomingMessage) throws {
        switch message.type {
        case .productCreated: _ = try message.decode(ProductCreated.self)
        case .productUpdated: _ = try message.decode(ProductUpdated.self)
        case .productDiscontinued: _ = try message.decode(ProductDiscontinued.self)
        case .stockAdjusted: _ = try message.decode(StockAdjusted.self)
        case .stockAdjustmentRejected: _ = try message.decode(StockAdjustmentRejected.self)
        case .orderPlaced: _ = try message.decode(OrderPlaced.self)
        case .stockReserved, .orderConfirmed: _ = try message.decode(PricedOrder.self)
        case .stockRejected, .paymentDeclined, .orderRejected, .orderCancelled: _ = try message.decode(OrderReason.self)
        case .stockReleased: _ = try message.decode(StockReleased.self)
        case .paymentRequested: _ = try message.decode(PaymentRequested.self)
        case .paymentSettled, .paymentRefunded: _ = try message.decode(PaymentSettled.self)
        case .orderPlace, .orderCancel, .productCreate, .productUpdate, .productDiscontinue, .stockAdjust: break
        }
        // And the projections' own reader, which a rebuild uses, must read it the same way.
        _ = try EventFacts(
            StoredEvent(
                position: 0, id: message.id, type: message.type, correlationId: "", occurredAt: Date(),
                body: message.body))
    }
}
