import Foundation

/// The body of every Depot message (docs/interface.md §4):
/// `{id, type, version, occurred_at, correlation_id, causation_id, data:{…}}`.
public struct Envelope<Payload: Codable & Sendable>: Codable, Sendable {
    public var id: UUID
    public var type: MessageType
    public var version: Int
    public var occurredAt: Date
    /// The order's id, or the product's sku for catalog messages.
    public var correlationId: String
    /// The id of the message that caused this one; nil for a command from outside.
    public var causationId: UUID?
    public var data: Payload

    public init(
        id: UUID = UUID(), type: MessageType, version: Int? = nil, occurredAt: Date = Date(), correlationId: String,
        causationId: UUID?, data: Payload
    ) {
        self.id = id
        self.type = type
        self.version = version ?? type.currentVersion
        self.occurredAt = occurredAt
        self.correlationId = correlationId
        self.causationId = causationId
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case id, type, version, data
        case occurredAt = "occurred_at"
        case correlationId = "correlation_id"
        case causationId = "causation_id"
    }
}

/// Why a message body cannot be handled: the reason a poison message carries to `depot.dead`.
public struct EnvelopeError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Not JSON, or not an envelope.
        case malformed
        /// A `type` this build does not know.
        case unknownType = "unknown_type"
        /// A `version` newer than this build reads.
        case unsupportedVersion = "unsupported_version"
        /// The `data` does not match its type's schema.
        case invalidData = "invalid_data"
    }

    public var kind: Kind
    public var detail: String
    public init(kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }
    public var description: String { "\(kind.rawValue): \(detail)" }
}

/// Reads and writes envelopes with the contract's conventions: snake_case keys given by each
/// type, RFC 3339 times with milliseconds, UUIDs in lower case.
public enum EnvelopeCodec {
    public static func encode<Payload>(_ envelope: Envelope<Payload>) throws -> [UInt8] {
        Array(try encoder.encode(envelope))
    }

    /// Decodes the whole envelope; when that fails, reads the header alone, so that the error
    /// names the real problem: a body that is not an envelope, an unknown type, a version too
    /// new, or data that does not fit its type.
    public static func decode<Payload>(_ body: [UInt8], as payload: Payload.Type = Payload.self) throws(EnvelopeError)
        -> Envelope<Payload>
    {
        if let readable = Payload.self as? any JSONReadable.Type {
            func read<Readable: JSONReadable>(_: Readable.Type) throws(EnvelopeError) -> Any {
                try readEnvelope(body, data: Readable.self)
            }
            return try read(readable) as! Envelope<Payload>
        }
        let envelope: Envelope<Payload>
        do {
            envelope = try decoder.decode(Envelope<Payload>.self, from: Data(body))
        } catch {
            _ = try readableHeader(body)
            throw EnvelopeError(kind: .invalidData, detail: describe(error))
        }
        guard envelope.version >= 1, envelope.version <= envelope.type.currentVersion else {
            throw unsupported(envelope.type, version: envelope.version)
        }
        return envelope
    }

    static func unsupported(_ type: MessageType, version: Int) -> EnvelopeError {
        EnvelopeError(
            kind: .unsupportedVersion,
            detail: "\(type.rawValue) version \(version); this build reads 1...\(type.currentVersion)")
    }

    /// The type, version and id of a body this build can read, without reading its data.
    public static func readableHeader(_ body: [UInt8]) throws(EnvelopeError) -> (
        type: MessageType, version: Int, id: UUID
    ) {
        let document: JSONValue
        do { document = try JSONValue.parse(body) } catch {
            throw EnvelopeError(kind: .malformed, detail: error.description)
        }
        return try readableHeader(document)
    }

    static func readableHeader(_ document: JSONValue) throws(EnvelopeError) -> (
        type: MessageType, version: Int, id: UUID
    ) {
        let header = try peek(document)
        guard header.version <= header.type.currentVersion, header.version >= 1 else {
            throw unsupported(header.type, version: header.version)
        }
        return header
    }

    /// The type and version of a body without reading its data (every delivery is peeked at
    /// before its handler is chosen, so this uses the small parser, not Codable).
    public static func peek(_ body: [UInt8]) throws(EnvelopeError) -> (type: MessageType, version: Int, id: UUID) {
        let document: JSONValue
        do { document = try JSONValue.parse(body) } catch {
            throw EnvelopeError(kind: .malformed, detail: error.description)
        }
        return try peek(document)
    }

    static func peek(_ document: JSONValue) throws(EnvelopeError) -> (type: MessageType, version: Int, id: UUID) {
        let id: UUID
        let typeName: String
        let version: Int
        do {
            id = try document.uuid("id")
            typeName = try document.string("type")
            version = try document.int("version")
        } catch {
            throw EnvelopeError(kind: .malformed, detail: error.detail)
        }
        guard let type = MessageType(rawValue: typeName) else {
            throw EnvelopeError(kind: .unknownType, detail: "type '\(typeName.prefix(100))' is not one Depot knows")
        }
        return (type, version, id)
    }

    /// Depot's JSON conventions (sorted keys, RFC 3339 times with milliseconds), for anything
    /// that answers in the same style as the messages (the edge's bodies).
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.string(date))
        }
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = RFC3339.anyDate(text) { return date }
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text.prefix(40))' is not an RFC 3339 time")
        }
        return decoder
    }()

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at \(path(context.codingPath)): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON" : "bad value at \(path(context.codingPath)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
