import DepotModel
import Foundation
import Postgres

/// What a payment provider answered for a charge.
public enum ChargeOutcome: Sendable, Equatable {
    case settled(reference: String)
    case declined(reason: String)
}

/// A provider failure worth retrying (network trouble, a busy provider).
public struct TransientPaymentError: Error, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "payment provider: \(reason)" }
}

/// A payment provider. Calls carry an idempotency key (the order id), as real providers
/// accept, so a charge repeated after a crash is answered from the provider's books instead
/// of being charged again.
public protocol PaymentProvider: Sendable {
    func charge(idempotencyKey: String, amountCents: Int, token: String) async throws -> ChargeOutcome
    func refund(idempotencyKey: String) async throws
}

/// The built-in simulated provider (docs/interface.md §4): `tok_ok` settles, `tok_declined` declines,
/// `tok_flaky` fails transiently twice then settles, `tok_slow` settles after 2 s; any other
/// token declines. Its books are the table `payments.simulated_provider`, written through its
/// own connections outside the service's transaction, as a remote provider's would be.
public struct SimulatedPaymentProvider: PaymentProvider {
    let pool: PostgresPool
    let slowDelay: Duration

    public init(pool: PostgresPool, slowDelay: Duration = .seconds(2)) {
        self.pool = pool
        self.slowDelay = slowDelay
    }

    public func charge(idempotencyKey: String, amountCents: Int, token: String) async throws -> ChargeOutcome {
        // Every token but tok_flaky has its answer before the books are touched: one statement
        // records it, or returns the answer recorded by an earlier call with the same key.
        let decided: ChargeOutcome?
        switch token {
        case "tok_ok": decided = .settled(reference: Self.reference())
        case "tok_slow":
            try await Task.sleep(for: slowDelay)
            decided = .settled(reference: Self.reference())
        case "tok_flaky": decided = nil
        case "tok_declined": decided = .declined(reason: "card declined")
        default: decided = .declined(reason: "unknown payment token")
        }
        let (outcome, reference) = Self.columns(decided)
        let row = try await pool.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO payments.simulated_provider (idempotency_key, token, amount_cents, calls, outcome, reference)
                VALUES (\(idempotencyKey), \(token), \(amountCents), 1, \(outcome), \(reference))
                ON CONFLICT (idempotency_key) DO UPDATE SET calls = payments.simulated_provider.calls + 1,
                    outcome = coalesce(payments.simulated_provider.outcome, excluded.outcome),
                    reference = coalesce(payments.simulated_provider.reference, excluded.reference)
                RETURNING calls, outcome, reference
                """
            ).first!
        }
        if let recorded = try row.decode(1, as: String?.self) {
            return recorded == "settled" ? .settled(reference: try row.decode(2)) : .declined(reason: recorded)
        }
        // tok_flaky: fails transiently on the first two calls, settles on the third.
        let calls: Int = try row.decode(0)
        guard calls > 2 else { throw TransientPaymentError("tok_flaky: temporarily unavailable (call \(calls))") }
        let settled = Self.reference()
        let final = try await pool.withConnection { connection in
            try await connection.query(
                """
                UPDATE payments.simulated_provider SET outcome = coalesce(outcome, 'settled'), reference = coalesce(reference, \(settled))
                WHERE idempotency_key = \(idempotencyKey) RETURNING reference
                """
            ).first!
        }
        return .settled(reference: try final.decode(0))
    }

    private static func columns(_ outcome: ChargeOutcome?) -> (String?, String?) {
        switch outcome {
        case .settled(let reference)?: ("settled", reference)
        case .declined(let reason)?: (reason, nil)
        case nil: (nil, nil)
        }
    }

    public func refund(idempotencyKey: String) async throws {
        try await pool.withConnection { connection in
            try await connection.execute(
                "UPDATE payments.simulated_provider SET refunded = true WHERE idempotency_key = \(idempotencyKey)")
        }
    }

    static func reference() -> String {
        "sim_" + UUID().canonicalText.replacingOccurrences(of: "-", with: "").prefix(20)
    }
}
