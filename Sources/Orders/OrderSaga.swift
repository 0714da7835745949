import DepotModel
import Foundation

/// The saga, orchestrated by orders, as a pure state machine: given an order's status and
/// what happened, the next status and what to emit. No I/O; the handler performs the decision.
///
/// ```
/// pending ──stock.reserved──▶ reserved ──payment.settled──▶ confirmed
///    │                          │ payment.declined / deadline / cancel
///    │ stock.rejected           ▼
///    ▼                       cancelled (inventory releases the stock on order.cancelled)
/// rejected          pending ──cancel──▶ cancelled
/// ```
/// Inputs that do not fit the status (late or repeated answers) change nothing.
public enum OrderSaga {
    public enum Input: Sendable, Equatable {
        case stockReserved(lines: [PricedLine], totalCents: Int)
        case stockRejected(reason: String)
        case paymentSettled
        case paymentDeclined(reason: String)
        case cancelRequested(reason: String)
        case paymentDeadlinePassed
    }

    public enum Effect: Sendable, Equatable {
        case requestPayment(amountCents: Int)
        case confirm
        case reject(reason: String)
        case cancel(reason: String)
    }

    public struct Decision: Sendable, Equatable {
        public var status: OrderStatus
        public var effect: Effect?
        /// Whether the payment deadline starts (true), ends (false), or stays as it is (nil).
        public var paymentDeadline: Bool?

        static func unchanged(_ status: OrderStatus) -> Decision {
            Decision(status: status, effect: nil, paymentDeadline: nil)
        }
    }

    public static func decide(_ status: OrderStatus, _ input: Input) -> Decision {
        switch (status, input) {
        case (.pending, .stockReserved(_, let total)):
            return Decision(status: .reserved, effect: .requestPayment(amountCents: total), paymentDeadline: true)
        case (.pending, .stockRejected(let reason)):
            return Decision(status: .rejected, effect: .reject(reason: reason), paymentDeadline: nil)
        case (.reserved, .paymentSettled):
            return Decision(status: .confirmed, effect: .confirm, paymentDeadline: false)
        case (.reserved, .paymentDeclined(let reason)):
            return Decision(
                status: .cancelled, effect: .cancel(reason: "payment declined: \(reason)"), paymentDeadline: false)
        case (.reserved, .paymentDeadlinePassed):
            return Decision(status: .cancelled, effect: .cancel(reason: "payment timed out"), paymentDeadline: false)
        case (.pending, .cancelRequested(let reason)), (.reserved, .cancelRequested(let reason)):
            return Decision(
                status: .cancelled, effect: .cancel(reason: reason), paymentDeadline: status == .reserved ? false : nil)
        default:
            return .unchanged(status)
        }
    }
}
