import Foundation
import Postgres

/// docs/interface.md §3's idempotency: the same key from the same caller with the same body names the
/// same order however often and however concurrently it is sent; another body is 409.
struct IdempotencyKeys: IdempotencyClaiming {
    let pool: PostgresPool

    /// Claims `key` for a new order, or returns the order it already names.
    func claim(subject: String, key: String, request: String) async throws -> IdempotencyClaim {
        let candidate = UUID()
        return try await pool.withConnection { connection in
            // One statement: concurrent identical requests all read the one row that won.
            let row = try await connection.query(
                """
                WITH inserted AS (
                    INSERT INTO edge.idempotency_keys (subject, key, request, order_id)
                    VALUES (\(subject), \(key), \(request), \(candidate))
                    ON CONFLICT (subject, key) DO NOTHING
                    RETURNING request, order_id
                )
                SELECT request, order_id FROM inserted
                UNION ALL
                SELECT request, order_id FROM edge.idempotency_keys
                WHERE subject = \(subject) AND key = \(key) AND NOT EXISTS (SELECT 1 FROM inserted)
                """
            ).first
            guard let row else {
                // Inserted by a transaction not yet visible to this snapshot: read again.
                let again = try await connection.query(
                    "SELECT request, order_id FROM edge.idempotency_keys WHERE subject = \(subject) AND key = \(key)"
                ).first!
                return try Self.claim(from: again, request: request)
            }
            return try Self.claim(from: row, request: request)
        }
    }

    func ping() async throws {
        try await pool.withConnection { _ = try await $0.query("SELECT 1") }
    }

    private static func claim(from row: PostgresRow, request: String) throws -> IdempotencyClaim {
        guard try row.decode(0, as: String.self) == request else { return .conflict }
        return .order(try row.decode(1))
    }

    /// A request body's meaning in one canonical text (keys sorted, whitespace ignored).
    static func canonical(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
