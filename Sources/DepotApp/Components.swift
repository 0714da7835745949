import AMQP
import DepotModel
import Edge
import Foundation
import Inventory
import Logging
import Messaging
import Metrics
import Operations
import Orders
import Payments
import Postgres
import Projector
import ServiceLifecycle
import UnixSignals

/// The long-running components of docs/interface.md §1 that consume from the broker.
public enum Component: String, Sendable, CaseIterable {
    case orders, inventory, payments, projector

    /// The queue this component consumes, with the handlers' default retry delays.
    public var queue: QueueSpec {
        switch self {
        case .orders: OrderHandler.queue
        case .inventory: InventoryHandler.queue
        case .payments: PaymentHandler.queue
        case .projector: ProjectorHandler.queue
        }
    }

    /// The schema whose outbox this component relays (the projector has none).
    var outboxSchema: String? {
        switch self {
        case .orders: OrderHandler.schema
        case .inventory: InventoryHandler.schema
        case .payments: PaymentHandler.schema
        case .projector: nil
        }
    }

    /// The component's services, in start order, made from what the process opened for it.
    /// They stop in reverse: the consumer first, the relay last, so that everything committed
    /// is published before the process ends.
    func services(in scope: ProcessScope) async throws -> [any Service] {
        var queue = self.queue
        queue.retryDelays = scope.settings.retryDelays
        try await Topology.declareExchanges(on: scope.amqp)
        try await Topology.declare(queue, on: scope.amqp, queueType: scope.settings.queueType.amqp)
        var logger = scope.logger
        logger[metadataKey: "component"] = "\(rawValue)"
        switch self {
        case .projector:
            // Batches of events in log order, no outbox of its own.
            return [
                BatchConsumer(
                    queue: queue, handler: ProjectorHandler(), pool: scope.pool, amqp: scope.amqp,
                    prefetch: max(scope.settings.prefetch, 256), maxBatch: 256, logger: logger)
            ]
        case .orders:
            let relay = scope.relay(for: OrderHandler.schema, logger: logger)
            return [
                relay,
                PaymentDeadlineWatcher(
                    pool: scope.pool, paymentTimeout: scope.settings.paymentTimeout, relayWake: relay.wake,
                    logger: logger),
                scope.consumer(
                    queue, schema: OrderHandler.schema, OrderHandler(paymentTimeout: scope.settings.paymentTimeout),
                    relay, logger),
            ]
        case .inventory:
            let relay = scope.relay(for: InventoryHandler.schema, logger: logger)
            return [relay, scope.consumer(queue, schema: InventoryHandler.schema, InventoryHandler(), relay, logger)]
        case .payments:
            // The simulated provider keeps its books through its own connections, as a remote one would.
            let providerPool = try await scope.openPool(maxConnections: scope.budget.provider, logger: logger)
            let relay = scope.relay(for: PaymentHandler.schema, logger: logger)
            let handler = PaymentHandler(provider: SimulatedPaymentProvider(pool: providerPool))
            return [relay, scope.consumer(queue, schema: PaymentHandler.schema, handler, relay, logger)]
        }
    }

    /// Declares every exchange and every component's queues (for operators: `depot migrate --topology`).
    public static func declareTopology(settings: Settings, on amqp: AMQPConnection) async throws -> (
        exchanges: [String], queues: [String]
    ) {
        try await Topology.declareExchanges(on: amqp)
        for component in allCases {
            var queue = component.queue
            queue.retryDelays = settings.retryDelays
            try await Topology.declare(queue, on: amqp, queueType: settings.queueType.amqp)
        }
        return ([Exchanges.commands, Exchanges.events, Exchanges.dead], allCases.map(\.queue.name))
    }
}

extension Settings.QueueType {
    var amqp: QueueType { QueueType(rawValue: rawValue) ?? .classic }
}
