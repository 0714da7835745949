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

    public init(position: Int64, id: UUID, type: MessageType, correlationId: String, occurredAt: Date, body: [UInt8]) {
        self.position = position
        self.id = id
        self.type = type
        self.correlationId = correlationId
        self.occurredAt = occurredAt
        self.body = body
    }

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

    /// One row of a batch append, as JSON for `jsonb_to_recordset`.
    struct Row: Encodable {
        var ord: Int
        var id: UUID
        var type: String
        var version: Int
        var correlationId: String
        var causationId: UUID?
        var occurredAt: String
        var traceparent: String?
        var body: String

        enum CodingKeys: String, CodingKey {
            case ord, id, type, version, traceparent, body
            case correlationId = "correlation_id"
            case causationId = "causation_id"
            case occurredAt = "occurred_at"
        }
    }

    /// Appends events once, in the given order, in one statement: returns those that were new,
    /// with their positions, in log order (an event the log already has is left out).
    ///
    /// Call inside a transaction that holds `lock(on:)`, so positions become visible in order.
    public static func append(_ messages: [IncomingMessage], on connection: PostgresConnection) async throws
        -> [StoredEvent]
    {
        guard !messages.isEmpty else { return [] }
        var rows: [Row] = []
        var envelopes: [UUID: (Envelope<AnyData>, [UInt8])] = [:]
        for (index, message) in messages.enumerated() {
            let envelope = try message.decode(AnyData.self)
            envelopes[envelope.id] = (envelope, message.body)
            rows.append(
                Row(
                    ord: index, id: envelope.id, type: envelope.type.rawValue, version: envelope.version,
                    correlationId: envelope.correlationId, causationId: envelope.causationId,
                    occurredAt: envelope.occurredAt.postgresTimestampText,
                    traceparent: message.traceparent, body: String(decoding: message.body, as: UTF8.self)))
        }
        let inserted = try await connection.query(
            """
            INSERT INTO eventlog.events (id, type, version, correlation_id, causation_id, occurred_at, traceparent, body)
            SELECT id, type, version, correlation_id, causation_id, occurred_at, traceparent, body
            FROM jsonb_to_recordset(\(try PostgresJSON(encoding: rows))) AS x(
                ord int, id uuid, type text, version int, correlation_id text, causation_id uuid, occurred_at timestamptz,
                traceparent text, body text)
            ORDER BY ord
            ON CONFLICT (id) DO NOTHING RETURNING id, position
            """)
        var events: [StoredEvent] = []
        for row in inserted {
            let id: UUID = try row.decode(0)
            guard let (envelope, body) = envelopes[id] else { continue }
            events.append(
                StoredEvent(
                    position: try row.decode(1), id: id, type: envelope.type, correlationId: envelope.correlationId,
                    occurredAt: envelope.occurredAt, body: body))
        }
        return events.sorted { $0.position < $1.position }
    }

    /// Serialises appenders until the transaction ends, so a reader never sees position N+1
    /// committed while N is still to come.
    public static func lock(on connection: PostgresConnection) async throws {
        connection.executeLater("SELECT pg_advisory_xact_lock(\(lockKey))")
    }

    static let lockKey: Int64 = 0x6465_706f_745f_6c6f  // "depot_lo"

    /// The append lock's key, for operator work that must stop the projector briefly.
    public static var lockKeyForOperators: Int64 { lockKey }

    /// Events after `position` in log order, at most `limit` (for rebuilds and readers).
    public static func read(after position: Int64, limit: Int, on connection: PostgresConnection) async throws
        -> [StoredEvent]
    {
        try await connection.query(
            """
            SELECT position, id, type, correlation_id, occurred_at, body FROM eventlog.events
            WHERE position > \(position) ORDER BY position LIMIT \(limit)
            """
        ).map { row in
            let type: String = try row.decode(2)
            guard let messageType = MessageType(rawValue: type) else {
                throw EnvelopeError(kind: .unknownType, detail: type)
            }
            return StoredEvent(
                position: try row.decode(0), id: try row.decode(1), type: messageType, correlationId: try row.decode(3),
                occurredAt: try row.decode(4), body: Array(try row.decode(5, as: String.self).utf8))
        }
    }

    /// The newest position in the log (0 when empty).
    public static func head(on connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SELECT coalesce(max(position), 0) FROM eventlog.events").first!.decode(0)
    }
}
