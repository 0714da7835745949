import DepotModel
import Testing

@testable import Orders

@Suite("Order saga state machine")
struct OrderSagaTests {
    let lines = [PricedLine(sku: "a", quantity: 2, unitPriceCents: 150)]

    @Test("the happy path: reserved asks for payment and starts the deadline; settled confirms and ends it")
    func happyPath() {
        let reserved = OrderSaga.decide(.pending, .stockReserved(lines: lines, totalCents: 300))
        #expect(reserved == .init(status: .reserved, effect: .requestPayment(amountCents: 300), paymentDeadline: true))
        let confirmed = OrderSaga.decide(.reserved, .paymentSettled)
        #expect(confirmed == .init(status: .confirmed, effect: .confirm, paymentDeadline: false))
    }

    @Test("rejection, decline, timeout and customer cancel each end the order with a reason")
    func endings() {
        #expect(
            OrderSaga.decide(.pending, .stockRejected(reason: "unknown sku x")).effect
                == .reject(reason: "unknown sku x"))
        #expect(
            OrderSaga.decide(.reserved, .paymentDeclined(reason: "card declined"))
                == .init(
                    status: .cancelled, effect: .cancel(reason: "payment declined: card declined"),
                    paymentDeadline: false))
        #expect(OrderSaga.decide(.reserved, .paymentDeadlinePassed).effect == .cancel(reason: "payment timed out"))
        #expect(OrderSaga.decide(.pending, .cancelRequested(reason: "changed my mind")).status == .cancelled)
        #expect(OrderSaga.decide(.pending, .cancelRequested(reason: "x")).paymentDeadline == nil)
        #expect(OrderSaga.decide(.reserved, .cancelRequested(reason: "x")).paymentDeadline == false)
    }

    @Test("late or repeated inputs change nothing", arguments: [OrderStatus.confirmed, .rejected, .cancelled])
    func finalOrdersStayFinal(status: OrderStatus) {
        let inputs: [OrderSaga.Input] = [
            .stockReserved(lines: lines, totalCents: 300), .stockRejected(reason: "r"), .paymentSettled,
            .paymentDeclined(reason: "d"),
            .cancelRequested(reason: "c"), .paymentDeadlinePassed,
        ]
        for input in inputs {
            #expect(OrderSaga.decide(status, input) == .init(status: status, effect: nil, paymentDeadline: nil))
        }
    }

    @Test("a payment answer for an order not yet reserved, or a second reservation, is ignored")
    func outOfOrder() {
        #expect(OrderSaga.decide(.pending, .paymentSettled).effect == nil)
        #expect(OrderSaga.decide(.reserved, .stockReserved(lines: lines, totalCents: 300)).effect == nil)
        #expect(OrderSaga.decide(.pending, .paymentDeadlinePassed).effect == nil)
    }
}
