import DepotModel
import Foundation
import Postgres

/// A service's outbox table (`<schema>.outbox`): messages written in the same transaction as
/// the state change that caused them, published later by the `OutboxRelay`.
public struct Outbox: Sendable {
    public let schema: String

    /// `schema` is chosen by the program (a service's own schema), never by a user.
    public init(schema: String) {
        self.schema = schema
    }

    /// The LISTEN/NOTIFY channel that wakes the relays of every process.
    public var channel: String { "depot_outbox_\(schema)" }

    /// Inserts a message; the insert travels with the transaction's next statement or its COMMIT.
    ///
    /// No NOTIFY here: the committing process wakes its own relay directly, and a NOTIFY in every
    /// transaction would serialise commits on PostgreSQL's notification queue lock and wake every
    /// listener. `notify` is for writers that have no relay of their own.
    public func append<Payload>(
        _ envelope: Envelope<Payload>, traceparent: String?, on connection: PostgresConnection, notify: Bool = false
    ) async throws {
        let body = try EnvelopeCodec.encode(envelope)
        connection.executeLater(
            """
            INSERT INTO \(unescaped: schema).outbox
                (message_id, message_type, exchange, routing_key, correlation_id, causation_id, traceparent, body)
            VALUES (\(envelope.id), \(envelope.type.rawValue), \(envelope.type.exchange), \(envelope.type.rawValue),
                    \(envelope.correlationId), \(envelope.causationId), \(traceparent), \(body))
            """)
        if notify { connection.executeLater("SELECT pg_notify(\(channel), '')") }
    }

    /// Builds the envelope and appends it (for work not caused by a delivery, such as a timer).
    public func append<Payload: Codable & Sendable>(
        _ type: MessageType, correlationId: String, causationId: UUID?, data: Payload, traceparent: String? = nil,
        on connection: PostgresConnection
    ) async throws {
        try await append(
            Envelope(type: type, correlationId: correlationId, causationId: causationId, data: data),
            traceparent: traceparent,
            on: connection)
    }

    /// Rows not yet published and the age of the oldest (for status and metrics).
    public func backlog(on connection: PostgresConnection) async throws -> (count: Int, oldest: Date?) {
        let row = try await connection.query(
            "SELECT count(*), min(created_at) FROM \(unescaped: schema).outbox"
        ).first!
        return (try row.decode(0, as: Int.self), try row.decode(1, as: Date?.self))
    }
}
