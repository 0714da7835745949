/// An error from the broker, the network or librabbitmq.
///
/// `description` names only the kind of failure; `debugDescription` adds the server's reply and
/// the library status, which may quote names of exchanges and queues.
public struct AMQPError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as an open set of codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: String, Sendable, Hashable {
            case invalidURL, connectionFailed, connectionClosed, channelClosed, publishNacked, unroutable,
                timeout, library, closed, consumerCancelled
        }
        let base: Base
        /// The URL could not be parsed.
        public static let invalidURL = Code(base: .invalidURL)
        /// No endpoint accepted a connection (or the login).
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The connection was lost or closed by the server.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// The server closed a channel, for instance on a publish to a missing exchange (404).
        public static let channelClosed = Code(base: .channelClosed)
        /// The broker answered a publish with basic.nack.
        public static let publishNacked = Code(base: .publishNacked)
        /// A mandatory publish matched no queue and came back as basic.return.
        public static let unroutable = Code(base: .unroutable)
        /// The operation did not finish within its deadline.
        public static let timeout = Code(base: .timeout)
        /// librabbitmq reported an error of its own.
        public static let library = Code(base: .library)
        /// The connection was closed by this process.
        public static let closed = Code(base: .closed)
        /// The server cancelled a consumer (its queue was deleted, for example).
        public static let consumerCancelled = Code(base: .consumerCancelled)
        public var description: String { base.rawValue }
    }

    public var code: Code
    /// The server's reply code (404, 406, 312, 320, …) where the server gave one.
    public var replyCode: UInt16?
    /// The server's reply text, or the library's description of its status.
    public var replyText: String?
    /// The AMQP class and method ids of the failed method, where known.
    public var classId: UInt16?
    public var methodId: UInt16?
    /// librabbitmq's status code (an `amqp_status_enum` value), for library errors.
    public var libraryStatus: Int32?
    /// What this process was doing.
    public var context: String?
    public var underlying: (any Error)?

    public init(
        _ code: Code, replyCode: UInt16? = nil, replyText: String? = nil, classId: UInt16? = nil,
        methodId: UInt16? = nil, libraryStatus: Int32? = nil, context: String? = nil, underlying: (any Error)? = nil
    ) {
        self.code = code
        self.replyCode = replyCode
        self.replyText = replyText
        self.classId = classId
        self.methodId = methodId
        self.libraryStatus = libraryStatus
        self.context = context
        self.underlying = underlying
    }

    public var description: String { "AMQPError(\(code))" }

    public var debugDescription: String {
        var parts = ["code: \(code)"]
        if let context { parts.append("context: \(context)") }
        if let replyCode { parts.append("replyCode: \(replyCode)") }
        if let replyText { parts.append("replyText: \(replyText)") }
        if let classId, let methodId { parts.append("method: \(classId).\(methodId)") }
        if let libraryStatus { parts.append("libraryStatus: \(libraryStatus)") }
        if let underlying { parts.append("underlying: \(String(reflecting: underlying))") }
        return "AMQPError(\(parts.joined(separator: ", ")))"
    }
}
