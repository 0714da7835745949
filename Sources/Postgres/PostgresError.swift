/// An error from PostgreSQL, the network, libpq or the pool.
///
/// Server errors carry the SQLSTATE `code` with the server's `message`, `detail`, `hint` and
/// `constraint`. `description` names only the kind and code; `debugDescription` has everything,
/// including the query text (never its bound values).
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        enum Base: String, Sendable, Hashable {
            case invalidConfiguration, connectionFailed, connectionClosed, server, poolTimeout, poolClosed, decoding
        }
        let base: Base
        /// The URL or an option is not usable.
        public static let invalidConfiguration = Kind(base: .invalidConfiguration)
        /// A new connection could not be made.
        public static let connectionFailed = Kind(base: .connectionFailed)
        /// The connection broke during a call; the pool will not lend it again.
        public static let connectionClosed = Kind(base: .connectionClosed)
        /// The server answered with an error; see `code`.
        public static let server = Kind(base: .server)
        /// No connection became free within the pool's acquire timeout.
        public static let poolTimeout = Kind(base: .poolTimeout)
        /// The pool has been shut down.
        public static let poolClosed = Kind(base: .poolClosed)
        /// A column's value could not be read as the requested type.
        public static let decoding = Kind(base: .decoding)
        public var description: String { base.rawValue }
    }

    /// A SQLSTATE code, with names for the ones Depot reacts to.
    public struct Code: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
        public let raw: String
        public init(raw: String) { self.raw = raw }
        public init(stringLiteral value: String) { self.raw = value }
        public var description: String { raw }

        public static let uniqueViolation: Code = "23505"
        public static let foreignKeyViolation: Code = "23503"
        public static let checkViolation: Code = "23514"
        public static let notNullViolation: Code = "23502"
        public static let serializationFailure: Code = "40001"
        public static let deadlockDetected: Code = "40P01"
        public static let lockNotAvailable: Code = "55P03"
        public static let undefinedTable: Code = "42P01"
        public static let syntaxError: Code = "42601"
        public static let invalidTextRepresentation: Code = "22P02"
        public static let adminShutdown: Code = "57P01"
        public static let cannotConnectNow: Code = "57P03"
        public static let queryCanceled: Code = "57014"
        public static let crashShutdown: Code = "57P02"
        public static let tooManyConnections: Code = "53300"
        public static let readOnlyTransaction: Code = "25006"
    }

    public var kind: Kind
    public var code: Code?
    public var message: String
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var table: String?
    public var column: String?
    public var query: String?

    public init(
        _ kind: Kind, code: Code? = nil, message: String, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, table: String? = nil, column: String? = nil, query: String? = nil
    ) {
        self.kind = kind
        self.code = code
        self.message = message
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
        self.query = query
    }

    /// Worth retrying the whole transaction: serialization failures, deadlocks and lost connections.
    public var isTransient: Bool {
        switch kind {
        case .connectionClosed, .connectionFailed, .poolTimeout: return true
        case .server:
            return code == .serializationFailure || code == .deadlockDetected || code == .adminShutdown
                || code == .cannotConnectNow
        default: return false
        }
    }

    /// The database cannot serve anyone right now (down, restarting, refusing connections, out
    /// of connections, or a standby where a primary was expected): an outage to wait out, not a
    /// fault of the request or message being handled.
    public var isUnavailable: Bool {
        switch kind {
        case .connectionClosed, .connectionFailed, .poolTimeout: return true
        case .server:
            guard let code else { return false }
            return code.raw.hasPrefix("08") || code == .adminShutdown || code == .crashShutdown
                || code == .cannotConnectNow
                || code == .tooManyConnections || code == .readOnlyTransaction
        default: return false
        }
    }

    /// The server ended the session (class 08, 57P01 admin shutdown and the rest of 57P): the
    /// connection cannot be used again.
    public var endsSession: Bool {
        guard let code else { return false }
        return code.raw.hasPrefix("08") || code.raw.hasPrefix("57P")
    }

    /// The server refused a new connection because its slots are taken (`max_connections`).
    public var isOutOfConnections: Bool {
        code == .tooManyConnections || message.contains("too many clients")
            || message.contains("remaining connection slots are reserved")
    }

    public var description: String {
        if let code { return "PostgresError(\(kind), \(code))" }
        return "PostgresError(\(kind))"
    }

    public var debugDescription: String {
        var parts = ["kind: \(kind)"]
        if let code { parts.append("code: \(code)") }
        parts.append("message: \(message)")
        if let detail { parts.append("detail: \(detail)") }
        if let hint { parts.append("hint: \(hint)") }
        if let constraint { parts.append("constraint: \(constraint)") }
        if let table { parts.append("table: \(table)") }
        if let column { parts.append("column: \(column)") }
        if let query { parts.append("query: \(query)") }
        return "PostgresError(\(parts.joined(separator: ", ")))"
    }
}
