import DepotModel
import Foundation
import Messaging
import Postgres

/// An event as the log keeps it: its global position and its body exactly as on the broker.
public struct StoredEvent: Sendable {
    public var position: Int64
    public var id: UUID
    public var type: MessageType
    public var correlationId: String
    public var occurredAt: Date
    public var body: [UInt8]

    public func decode<Payload>(_ payload: Payload.Type) throws(EnvelopeError) -> Envelope<Payload> {
        try EnvelopeCodec.decode(body, as: payload)
    }
}

/// The global, append-only event log (`eventlog.events`).
public enum EventLog {
    /// Data whose content the log does not need to read.
    struct AnyData: Codable, Sendable {
        init(from decoder: any Decoder) throws {}
        func encode(to encoder: any Encoder) throws {}
    }

    /// Appends an event once: returns it with its new position, or nil if the log has it already.
    ///
    /// Call inside a transaction that holds `lock(on:)`, so positions become visible in order.
    public static func append(_ message: IncomingMessage, on connection: PostgresConnection) async throws -> StoredEvent? {
        let envelope = try message.decode(AnyData.self)
        let rows = try await connection.query(
            """
            INSERT INTO eventlog.events (id, type, version, correlation_id, causation_id, occurred_at, traceparent, body)
            VALUES (\(envelope.id), \(envelope.type.rawValue), \(envelope.version), \(envelope.correlationId), \(envelope.causationId),
                    \(envelope.occurredAt), \(message.traceparent), \(String(decoding: message.body, as: UTF8.self)))
            ON CONFLICT (id) DO NOTHING RETURNING position
            """)
        guard let row = rows.first else { return nil }
        return StoredEvent(
            position: try row.decode(0), id: envelope.id, type: envelope.type, correlationId: envelope.correlationId,
            occurredAt: envelope.occurredAt, body: message.body)
    }

    /// Serialises appenders until the transaction ends, so a reader never sees position N+1
    /// committed while N is still to come.
    public static func lock(on connection: PostgresConnection) async throws {
        try await connection.execute("SELECT pg_advisory_xact_lock(\(lockKey))")
    }

    static let lockKey: Int64 = 0x6465_706f_745f_6c6f  // "depot_lo"

    /// The newest position in the log (0 when empty).
    public static func head(on connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SELECT coalesce(max(position), 0) FROM eventlog.events").first!.decode(0)
    }
}
