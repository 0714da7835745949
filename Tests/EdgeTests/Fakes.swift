import DepotModel
import Foundation
import Operations
import Postgres
import Projector
import Synchronization

@testable import Edge

/// The broker, in memory: records what the edge publishes; can be down or withhold confirms.
final class FakePublisher: CommandPublishing {
    struct Published: Sendable {
        var type: MessageType
        var correlationId: String
        var body: [UInt8]
        var traceparent: String?
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:] }
    }

    private struct State {
        var connected = true
        var confirms = true
        var published: [Published] = []
        var onPublish: (@Sendable (Published) -> Void)?
    }

    private let state = Mutex(State())

    var isConnected: Bool { state.withLock { $0.connected } }
    var published: [Published] { state.withLock { $0.published } }

    /// The broker connection is down (or back).
    func setConnected(_ connected: Bool) { state.withLock { $0.connected = connected } }
    /// The broker takes messages but confirms none (every publish times out).
    func setConfirms(_ confirms: Bool) { state.withLock { $0.confirms = confirms } }
    /// Runs after each confirmed publish: what the services and the projector would do.
    func onPublish(_ action: @escaping @Sendable (Published) -> Void) { state.withLock { $0.onPublish = action } }

    struct Unconfirmed: Error {}

    func publish<Payload>(_ envelope: Envelope<Payload>, traceparent: String?, timeout: Duration?) async throws {
        let message = Published(
            type: envelope.type, correlationId: envelope.correlationId, body: try EnvelopeCodec.encode(envelope),
            traceparent: traceparent)
        let action: (@Sendable (Published) -> Void)? = try state.withLock { state in
            guard state.confirms else { throw Unconfirmed() }
            state.published.append(message)
            return state.onPublish
        }
        action?(message)
    }
}

/// The projections and the event log, in memory, with the same orderings as the SQL; or a
/// database that is away (every call throws `failure`).
final class FakeProjections: ProjectionReading {
    private struct State {
        var products: [String: ProductView] = [:]
        var orders: [UUID: OrderRow] = [:]
        var events: [UUID: [LoggedEvent]] = [:]
        var failure: PostgresError?
        var reads: [String: Int] = [:]
    }

    private let state = Mutex(State())

    func put(_ product: ProductView) { state.withLock { $0.products[product.sku] = product } }
    func put(_ order: OrderRow) { state.withLock { $0.orders[order.id] = order } }
    func put(events: [LoggedEvent], of order: UUID) { state.withLock { $0.events[order] = events } }
    func product(named sku: String) -> ProductView? { state.withLock { $0.products[sku] } }
    func storedOrder(_ id: UUID) -> OrderRow? { state.withLock { $0.orders[id] } }
    /// Every call throws this from now on (nil: the database is back).
    func fail(with error: PostgresError?) { state.withLock { $0.failure = error } }
    /// How often the edge read this sku or order id.
    func reads(of key: String) -> Int { state.withLock { $0.reads[key, default: 0] } }

    private func read<T>(_ key: String, _ body: (inout State) -> T) throws -> T {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            state.reads[key, default: 0] += 1
            return body(&state)
        }
    }

    func product(_ sku: String) async throws -> ProductView? { try read(sku) { $0.products[sku] } }

    func products(after sku: String, limit: Int) async throws -> [ProductView] {
        try read("products") { state in
            Array(state.products.values.filter { $0.sku > sku }.sorted { $0.sku < $1.sku }.prefix(limit))
        }
    }

    func order(_ id: UUID) async throws -> OrderRow? { try read(id.canonicalText) { $0.orders[id] } }

    func orders(_ query: OrderQuery) async throws -> [OrderRow] {
        try read("orders") { state in
            // Newest first by created_at, then id (uuid order is the order of its lowercase text).
            let newestFirst = { (a: OrderRow, b: OrderRow) in
                a.createdAt != b.createdAt ? a.createdAt > b.createdAt : a.id.canonicalText > b.id.canonicalText
            }
            return Array(
                state.orders.values.filter { order in
                    (query.customer == nil || order.customerId == query.customer)
                        && (query.status == nil || order.status == query.status)
                        && query.after.map { newestFirst(OrderRow.key($0), order) } ?? true
                }.sorted(by: newestFirst).prefix(query.limit))
        }
    }

    func events(ofOrder id: UUID) async throws -> [LoggedEvent] { try read(id.canonicalText) { $0.events[id] ?? [] } }

    func ping() async throws { _ = try read("ping") { _ in () } }
}

extension OrderRow {
    /// A row holding only a sort key, to compare with (`FakeProjections.orders`).
    static func key(_ cursor: OrderCursor) -> OrderRow {
        OrderRow(
            id: cursor.id, customerId: "", status: .pending, lines: [], totalCents: nil, paymentStatus: .none,
            paymentReference: nil,
            reason: nil, createdAt: cursor.createdAt, updatedAt: cursor.createdAt, version: 0, position: 0)
    }

    /// An order as the projector would have it.
    static func sample(
        id: UUID = UUID(), customer: String = "alice", status: OrderStatus = .confirmed,
        createdAt: Date = Date(timeIntervalSince1970: 1_800_000_000.5)
    ) -> OrderRow {
        let priced = status != .pending && status != .rejected
        return OrderRow(
            id: id, customerId: customer, status: status,
            lines: [.init(sku: "mug", quantity: 2, unitPriceCents: priced ? 1200 : nil)],
            totalCents: priced ? 2400 : nil, paymentStatus: status == .confirmed ? .settled : .none,
            paymentReference: status == .confirmed ? "sim_1" : nil,
            reason: status == .rejected || status == .cancelled ? "because" : nil,
            createdAt: createdAt, updatedAt: createdAt + 1, version: status == .pending ? 1 : 5, position: 42)
    }
}

extension ProductView {
    static func sample(_ sku: String = "mug", available: Int = 10, version: Int = 1, discontinued: Bool = false)
        -> ProductView
    {
        ProductView(
            sku: sku, name: "Mug", priceCents: 1200, stockAvailable: available, stockReserved: 0,
            discontinued: discontinued, version: version,
            updatedAt: Date(timeIntervalSince1970: 1_800_000_000.25))
    }
}

/// The idempotency keys, in memory.
final class FakeIdempotency: IdempotencyClaiming {
    private struct State {
        var keys: [String: (request: String, order: UUID)] = [:]
        var failure: PostgresError?
    }

    private let state = Mutex(State())

    func fail(with error: PostgresError?) { state.withLock { $0.failure = error } }

    func claim(subject: String, key: String, request: String, timeout: Duration) async throws -> IdempotencyClaim {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            let id = "\(subject)\u{0}\(key)"
            if let existing = state.keys[id] { return existing.request == request ? .order(existing.order) : .conflict }
            let order = UUID()
            state.keys[id] = (request, order)
            return .order(order)
        }
    }

    func ping() async throws {
        try state.withLock { state in if let failure = state.failure { throw failure } }
    }
}

/// Waits until `condition` holds (checking every millisecond), at most `timeout`.
func until(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return true
}

/// The admin operations in memory: dead-letter queues as lists; the overview and replay are
/// the integration tests' (they need the servers).
final class FakeAdminOperations: AdminOperating {
    private let queues = Mutex<[String: [DeadLetters.Letter]]>([:])
    let connected = Atomic<Bool>(true)

    var brokerConnected: Bool { connected.load(ordering: .relaxed) }

    func declare(_ queue: String, _ letters: [DeadLetters.Letter] = []) {
        queues.withLock { $0[queue] = letters }
    }

    func letters(_ queue: String) -> [DeadLetters.Letter]? { queues.withLock { $0[queue] } }

    func overview() async throws -> SystemStatus.Report {
        throw PostgresError(.connectionFailed, message: "no database in the router tests")
    }

    func depth(of queue: String) async throws -> Int? { queues.withLock { $0[queue]?.count } }

    func summary(of queue: String) async throws -> DeadLetters.Summary {
        let letters = queues.withLock { $0[queue] ?? [] }
        return DeadLetters.Summary(
            queue: queue, count: letters.count, oldest: letters.compactMap(\.deadLetteredAt).min(),
            reasons: letters.reduce(into: [:]) { $0[$1.reasonKind, default: 0] += 1 })
    }

    func peek(_ queue: String, limit: Int) async throws -> [DeadLetters.Letter] {
        Array(queues.withLock { $0[queue] ?? [] }.prefix(limit))
    }

    func redrive(_ queue: String, selection: DeadLetters.Selection, progress: @escaping @Sendable (Int) -> Void)
        async throws -> DeadLetters.RedriveOutcome
    {
        let (moved, left) = queues.withLock { queues -> (Int, Int) in
            let before = queues[queue] ?? []
            let kept = before.filter { letter in
                switch selection {
                case .all: false
                case .message(let id): letter.messageId != id
                case .reason(let kind): letter.reasonKind != kind
                }
            }
            queues[queue] = kept
            return (before.count - kept.count, kept.count)
        }
        progress(moved)
        return DeadLetters.RedriveOutcome(moved: moved, left: left)
    }

    func purge(_ queue: String) async throws -> Int {
        queues.withLock { queues in
            defer { queues[queue] = [] }
            return queues[queue]?.count ?? 0
        }
    }

    func replayDryRun(projections: [String], progress: @escaping @Sendable (ProjectionRebuild.Progress) -> Void)
        async throws -> [ProjectionRebuild.Difference]
    {
        []
    }

    func rebuildCheck(order: UUID) async throws -> OrderRebuildCheck.Outcome? { nil }

    func flowSample(after position: Int64?, backlog: Int64, limit: Int) async throws -> FlowSample {
        FlowSample(events: [], position: position ?? 0, deadLetters: 0)
    }
}
