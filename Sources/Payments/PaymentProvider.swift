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

/// The built-in simulated provider (CONTRACT §4): `tok_ok` settles, `tok_declined` declines,
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
        let row = try await pool.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO payments.simulated_provider (idempotency_key, token, amount_cents, calls)
                VALUES (\(idempotencyKey), \(token), \(amountCents), 1)
                ON CONFLICT (idempotency_key) DO UPDATE SET calls = payments.simulated_provider.calls + 1
                RETURNING calls, outcome, reference
                """
            ).first!
        }
        let calls: Int = try row.decode(0)
        if let outcome = try row.decode(1, as: String?.self) {
            return outcome == "settled" ? .settled(reference: try row.decode(2)) : .declined(reason: outcome)
        }
        let outcome: ChargeOutcome
        switch token {
        case "tok_ok":
            outcome = .settled(reference: Self.reference())
        case "tok_flaky":
            guard calls > 2 else { throw TransientPaymentError("tok_flaky: temporarily unavailable (call \(calls))") }
            outcome = .settled(reference: Self.reference())
        case "tok_slow":
            try await Task.sleep(for: slowDelay)
            outcome = .settled(reference: Self.reference())
        case "tok_declined":
            outcome = .declined(reason: "card declined")
        default:
            outcome = .declined(reason: "unknown payment token")
        }
        let (text, reference): (String, String?) =
            switch outcome {
            case .settled(let reference): ("settled", reference)
            case .declined(let reason): (reason, nil)
            }
        try await pool.withConnection { connection in
            try await connection.execute(
                """
                UPDATE payments.simulated_provider SET outcome = \(text), reference = \(reference)
                WHERE idempotency_key = \(idempotencyKey) AND outcome IS NULL
                """)
        }
        return outcome
    }

    public func refund(idempotencyKey: String) async throws {
        try await pool.withConnection { connection in
            try await connection.execute(
                "UPDATE payments.simulated_provider SET refunded = true WHERE idempotency_key = \(idempotencyKey)")
        }
    }

    static func reference() -> String { "sim_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20) }
}
