import DepotModel
import Foundation
import Postgres
import Testing

@testable import Projector

/// Events of one order and its products, as the services write them, with log positions and
/// times one second apart.
struct History {
    let orderId = UUID(canonicalText: "0b4f3c2a-1d5e-4f6a-8b7c-9d0e1f2a3b4c")!
    let start = Date(timeIntervalSince1970: 1_800_000_000.123)
    private(set) var events: [StoredEvent] = []

    var orderKey: String { orderId.canonicalText }

    func time(_ index: Int) -> Date { start + Double(index) }

    mutating func append<Payload: Codable & Sendable>(_ type: MessageType, _ data: Payload, correlation: String? = nil)
    {
        let index = events.count
        let envelope = Envelope(
            type: type, occurredAt: time(index), correlationId: correlation ?? orderKey, causationId: nil, data: data)
        events.append(
            StoredEvent(
                position: Int64(100 + index), id: envelope.id, type: type, correlationId: envelope.correlationId,
                occurredAt: envelope.occurredAt, body: try! EnvelopeCodec.encode(envelope)))
    }

    var facts: [EventFacts] { events.map { try! EventFacts($0) } }

    // The order's events.
    mutating func placed(_ lines: [OrderLine] = [OrderLine(sku: "mug", quantity: 2)]) {
        append(.orderPlaced, OrderPlaced(orderId: orderId, customerId: "alice", lines: lines))
    }
    mutating func priced(
        _ type: MessageType, _ lines: [PricedLine] = [PricedLine(sku: "mug", quantity: 2, unitPriceCents: 1200)]
    ) {
        append(
            type,
            PricedOrder(
                orderId: orderId, lines: lines, totalCents: lines.reduce(0) { $0 + $1.quantity * $1.unitPriceCents }))
    }
    mutating func reason(_ type: MessageType, _ reason: String) {
        append(type, OrderReason(orderId: orderId, reason: reason))
    }
    mutating func paymentRequested() {
        append(.paymentRequested, PaymentRequested(orderId: orderId, amountCents: 2400, token: "tok_ok"))
    }
    mutating func payment(_ type: MessageType) {
        append(type, PaymentSettled(orderId: orderId, amountCents: 2400, reference: "sim_1"))
    }
    mutating func declined() { reason(.paymentDeclined, "card declined") }
    mutating func released(_ lines: [OrderLine] = [OrderLine(sku: "mug", quantity: 2)]) {
        append(.stockReleased, StockReleased(orderId: orderId, lines: lines))
    }

    // The catalog's events.
    mutating func created(_ sku: String = "mug", stock: Int = 10) {
        append(.productCreated, ProductCreated(sku: sku, name: "Mug", priceCents: 1200, stock: stock), correlation: sku)
    }
    mutating func updated(_ sku: String = "mug") {
        append(.productUpdated, ProductUpdated(sku: sku, name: "Big mug", priceCents: 1500), correlation: sku)
    }
    mutating func discontinued(_ sku: String = "mug") {
        append(.productDiscontinued, ProductDiscontinued(sku: sku), correlation: sku)
    }
    mutating func adjusted(_ delta: Int, _ sku: String = "mug") {
        append(.stockAdjusted, StockAdjusted(sku: sku, delta: delta, available: 0), correlation: sku)
    }
}

@Suite("Order projection fold")
struct OrderFoldTests {
    /// One row of the table: the events after `order.placed`, and the row they leave.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var events: @Sendable (inout History) -> Void
        var status: OrderStatus
        var payment: OrderRow.PaymentStatus
        var reason: String?
        var priced: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "placed only", events: { _ in }, status: .pending, payment: .none, priced: false),
        Case(
            name: "the happy path",
            events: {
                $0.priced(.stockReserved)
                $0.paymentRequested()
                $0.payment(.paymentSettled)
                $0.priced(.orderConfirmed)
            },
            status: .confirmed, payment: .settled, priced: true),
        Case(
            name: "rejected by inventory",
            events: {
                $0.reason(.stockRejected, "unknown sku mug")
                $0.reason(.orderRejected, "unknown sku mug")
            },
            status: .rejected, payment: .none, reason: "unknown sku mug", priced: false),
        Case(
            name: "payment declined",
            events: {
                $0.priced(.stockReserved)
                $0.paymentRequested()
                $0.declined()
                $0.reason(.orderCancelled, "payment declined: card declined")
                $0.released()
            }, status: .cancelled, payment: .declined, reason: "payment declined: card declined", priced: true),
        Case(
            name: "cancelled while pending, then a late reservation and its release",
            events: {
                $0.reason(.orderCancelled, "cancelled by the customer")
                $0.priced(.stockReserved)
                $0.released()
            },
            status: .cancelled, payment: .none, reason: "cancelled by the customer", priced: true),
        Case(
            name: "cancelled after settling: refunded",
            events: {
                $0.priced(.stockReserved)
                $0.paymentRequested()
                $0.payment(.paymentSettled)
                $0.reason(.orderCancelled, "cancelled by the customer")
                $0.payment(.paymentRefunded)
                $0.released()
            }, status: .cancelled, payment: .settled, reason: "cancelled by the customer", priced: true),
    ]

    @Test("each order event moves the status, the payment and the version as the table says", arguments: cases)
    func fold(_ row: Case) throws {
        var history = History()
        history.placed()
        row.events(&history)
        var rows: [String: OrderRow] = [:]
        let changed = Projections.foldOrders(history.facts, into: &rows)
        #expect(changed == [history.orderKey])
        let order = try #require(rows[history.orderKey])
        #expect(order.status == row.status)
        #expect(order.paymentStatus == row.payment)
        #expect(order.reason == row.reason)
        #expect(order.version == history.events.count)
        #expect(order.position == history.events.last!.position)
        // Times are the events' own: placed, and the newest applied.
        #expect(order.createdAt == history.time(0))
        #expect(order.updatedAt == history.time(history.events.count - 1))
        #expect(order.customerId == "alice" && order.id == history.orderId)
        if row.priced {
            #expect(order.lines == [.init(sku: "mug", quantity: 2, unitPriceCents: 1200)])
            #expect(order.totalCents == 2400)
        } else {
            #expect(order.lines == [.init(sku: "mug", quantity: 2, unitPriceCents: nil)])
            #expect(order.totalCents == nil)
        }
        #expect((order.paymentReference != nil) == (row.payment == .settled))
    }

    @Test("folding in one batch or event by event gives the same row")
    func batchesDoNotMatter() throws {
        var history = History()
        history.placed()
        history.priced(.stockReserved)
        history.paymentRequested()
        history.payment(.paymentSettled)
        history.priced(.orderConfirmed)
        var together: [String: OrderRow] = [:]
        _ = Projections.foldOrders(history.facts, into: &together)
        var oneByOne: [String: OrderRow] = [:]
        for fact in history.facts { _ = Projections.foldOrders([fact], into: &oneByOne) }
        #expect(together == oneByOne)
    }

    @Test("an order is placed once; events of an order not placed change nothing")
    func placedOnce() throws {
        var history = History()
        history.priced(.stockReserved)  // before its order.placed (another replica's order, a rebuild from a position)
        var rows: [String: OrderRow] = [:]
        #expect(Projections.foldOrders(history.facts, into: &rows).isEmpty)
        #expect(rows.isEmpty)

        var twice = History()
        twice.placed()
        twice.placed([OrderLine(sku: "other", quantity: 9)])
        #expect(Projections.foldOrders(twice.facts, into: &rows) == [twice.orderKey])
        #expect(rows[twice.orderKey]?.version == 1)
        #expect(rows[twice.orderKey]?.lines.map(\.sku) == ["mug"])
    }

    @Test("catalog events are not order events")
    func catalogEventsAreIgnored() {
        var history = History()
        history.created()
        var rows: [String: OrderRow] = [:]
        #expect(Projections.foldOrders(history.facts, into: &rows).isEmpty)
    }

    @Test("the row's record for jsonb_populate_recordset has every column, times as PostgreSQL stores them")
    func record() throws {
        var history = History()
        history.placed()
        var rows: [String: OrderRow] = [:]
        _ = Projections.foldOrders(history.facts, into: &rows)
        let record = try #require(rows[history.orderKey]).record
        guard case .object(let members) = record else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == OrderRow.columns.components(separatedBy: ", "))
        #expect(record["created_at"] == .string(history.time(0).postgresTimestampText))
        #expect(record["total_cents"] == .null)
        #expect(record["lines"] == .array([.object([.init("sku", "mug"), .init("quantity", 2)])]))
    }

    @Test("the lines column is read back as written")
    func linesColumn() throws {
        let lines = try OrderRow.lines(
            fromJSON: Array(#"[{"sku":"a","quantity":1},{"sku":"b","quantity":2,"unit_price_cents":300}]"#.utf8))
        #expect(lines == [.init(sku: "a", quantity: 1), .init(sku: "b", quantity: 2, unitPriceCents: 300)])
        #expect(throws: (any Error).self) { try OrderRow.lines(fromJSON: Array(#"[{"sku":"a"}]"#.utf8)) }
    }
}

@Suite("Product projection fold")
struct ProductFoldTests {
    /// One row of the table: events after `product.created` (10 in stock), and the stock they leave.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var events: @Sendable (inout History) -> Void
        var available: Int64
        var reserved: Int64
        var sold: Int64
        var discontinued = false
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "created", events: { _ in }, available: 10, reserved: 0, sold: 0),
        Case(name: "reserved", events: { $0.priced(.stockReserved) }, available: 8, reserved: 2, sold: 0),
        Case(
            name: "reserved then sold",
            events: {
                $0.priced(.stockReserved)
                $0.priced(.orderConfirmed)
            }, available: 8, reserved: 0, sold: 2),
        Case(
            name: "reserved then released",
            events: {
                $0.priced(.stockReserved)
                $0.released()
            }, available: 10, reserved: 0, sold: 0),
        Case(
            name: "one order naming the sku twice",
            events: {
                $0.priced(
                    .stockReserved,
                    [
                        PricedLine(sku: "mug", quantity: 2, unitPriceCents: 1200),
                        PricedLine(sku: "mug", quantity: 3, unitPriceCents: 1200),
                    ])
            }, available: 5, reserved: 5, sold: 0),
        Case(
            name: "restocked and written off",
            events: {
                $0.adjusted(5)
                $0.adjusted(-3)
            }, available: 12, reserved: 0, sold: 0),
        Case(
            name: "discontinued", events: { $0.discontinued() }, available: 10, reserved: 0, sold: 0, discontinued: true
        ),
        Case(
            name: "order events that do not move stock",
            events: {
                $0.paymentRequested()
                $0.reason(.orderCancelled, "x")
            }, available: 10, reserved: 0, sold: 0),
    ]

    @Test("each stock and catalog event moves the product as the table says", arguments: cases)
    func fold(_ row: Case) throws {
        var history = History()
        history.created()
        row.events(&history)
        var rows: [String: ProductRow] = [:]
        _ = Projections.foldProducts(history.facts, into: &rows)
        let product = try #require(rows["mug"])
        #expect(product.stockAvailable == row.available)
        #expect(product.stockReserved == row.reserved)
        #expect(product.stockSold == row.sold)
        #expect(product.discontinued == row.discontinued)
        let moving = history.facts.filter { Projections.productLines($0) != nil }
        #expect(product.version == Int64(moving.count))
        #expect(product.position == moving.last!.event.position)
        #expect(product.updatedAt == moving.last!.event.occurredAt.postgresTimestampText)
    }

    @Test("an update renames and reprices")
    func update() throws {
        var history = History()
        history.created()
        history.updated()
        var rows: [String: ProductRow] = [:]
        #expect(Projections.foldProducts(history.facts, into: &rows) == ["mug"])
        #expect(rows["mug"]?.name == "Big mug" && rows["mug"]?.priceCents == 1500)
    }

    @Test("a product is created once; events for an unknown sku change nothing")
    func createdOnce() {
        var history = History()
        history.adjusted(5, "ghost")
        history.priced(.stockReserved, [PricedLine(sku: "ghost", quantity: 1, unitPriceCents: 1)])
        var rows: [String: ProductRow] = [:]
        #expect(Projections.foldProducts(history.facts, into: &rows).isEmpty)

        var twice = History()
        twice.created(stock: 10)
        twice.created(stock: 99)
        #expect(Projections.foldProducts(twice.facts, into: &rows) == ["mug"])
        #expect(rows["mug"]?.stockAvailable == 10 && rows["mug"]?.version == 1)
    }

    @Test("an order's events touch only the skus of its lines")
    func skusMoved() {
        var history = History()
        history.placed([OrderLine(sku: "a", quantity: 1), OrderLine(sku: "b", quantity: 1)])
        history.priced(
            .stockReserved,
            [
                PricedLine(sku: "a", quantity: 1, unitPriceCents: 1),
                PricedLine(sku: "b", quantity: 1, unitPriceCents: 1),
            ])
        history.paymentRequested()
        let facts = history.facts
        #expect(Projections.productLines(facts[0]) == nil)  // order.placed reserves nothing yet
        #expect(Set(facts[1].skusMoved) == ["a", "b"])
        #expect(facts[2].skusMoved.isEmpty)
    }
}
