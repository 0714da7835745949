import DepotModel
import Foundation
import Logging
import Postgres
import Synchronization

/// A service's reaction to one message, run inside the delivery's database transaction: the
/// inbox row is already written, and whatever it emits goes to the outbox in the same commit.
public protocol MessageHandler: Sendable {
    func handle(_ message: IncomingMessage, context: HandlerContext) async throws

    /// Runs first in every transaction, with all its messages (one, or a batch): takes the row
    /// locks they will need in one global order, so that two transactions never hold rows the
    /// other waits for. Handlers whose messages cannot meet on a row need not implement it.
    func prepare(_ messages: [IncomingMessage], on connection: PostgresConnection) async throws

    /// False for a handler whose work has effects outside the database (a payment provider's
    /// charge): in a batch, another message's failure would roll back the record of an effect
    /// that happened, so such a handler gets one message per transaction.
    var handlesBatches: Bool { get }
}

extension MessageHandler {
    public func prepare(_ messages: [IncomingMessage], on connection: PostgresConnection) async throws {}
    public var handlesBatches: Bool { true }
}

/// A failure that retrying cannot fix: the message goes to `depot.dead` with this reason.
public struct PermanentFailure: Error, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// What a handler works with: the transaction's connection and the outbox.
public struct HandlerContext: Sendable {
    /// The delivery's transaction; statements run on the connection's own thread.
    public let connection: PostgresConnection
    public let message: IncomingMessage
    public let logger: Logger
    let outbox: Outbox
    let emitted = EmittedCount()

    init(connection: PostgresConnection, message: IncomingMessage, logger: Logger, outbox: Outbox) {
        self.connection = connection
        self.message = message
        self.logger = logger
        self.outbox = outbox
    }

    /// Records an event (or command) caused by the message being handled; the relay publishes
    /// it after the transaction commits.
    public func emit<Payload: Codable & Sendable>(_ type: MessageType, correlationId: String, _ data: Payload)
        async throws
    {
        let envelope = Envelope(type: type, correlationId: correlationId, causationId: message.id, data: data)
        try await outbox.append(envelope, traceparent: message.traceparent, on: connection)
        emitted.count.add(1, ordering: .relaxed)
    }

    var emittedCount: Int { emitted.count.load(ordering: .relaxed) }
}

final class EmittedCount: Sendable {
    let count = Atomic<Int>(0)
}
