/// How to reach the broker and how the connection behaves.
public struct AMQPConfiguration: Sendable {
    /// Broker nodes, tried in turn on every (re)connection.
    public var endpoints: [AMQPEndpoint]
    public var options: Options

    public struct Options: Sendable {
        /// Heartbeat interval negotiated with the broker; a silent peer is declared lost after twice this. Default 10 s.
        public var heartbeat: Duration = .seconds(10)
        /// Time allowed for one TCP connect plus login. Default 5 s.
        public var connectTimeout: Duration = .seconds(5)
        /// How long the first `connect` keeps trying every endpoint before it throws. Default 10 s.
        public var initialConnectDeadline: Duration = .seconds(10)
        /// How long a synchronous RPC (declare, consume) may wait for its reply. Default 30 s.
        public var rpcTimeout: Duration = .seconds(30)
        /// Delay between reconnection attempts.
        public var reconnectBackoff = Backoff()
        /// Largest frame size in bytes. Default 128 KiB, RabbitMQ's default.
        public var frameMax: Int32 = 131_072
        /// On `close()`, how long to wait for outstanding confirms. Default 5 s.
        public var closeGracePeriod: Duration = .seconds(5)

        public init() {}
    }

    public init(endpoints: [AMQPEndpoint], options: Options = Options()) {
        precondition(!endpoints.isEmpty, "at least one endpoint")
        self.endpoints = endpoints
        self.options = options
    }

    /// Parses `amqp://…` or a comma-separated list of such URLs.
    public init(url: String, options: Options = Options()) throws {
        self.init(endpoints: try AMQPEndpoint.list(url), options: options)
    }
}

/// The kinds of exchange RabbitMQ offers out of the box, plus any plugin's by name.
public struct ExchangeType: Sendable, Hashable, ExpressibleByStringLiteral {
    public let name: String
    public init(_ name: String) { self.name = name }
    public init(stringLiteral value: String) { self.name = value }
    public static let direct = ExchangeType("direct")
    public static let topic = ExchangeType("topic")
    public static let fanout = ExchangeType("fanout")
    public static let headers = ExchangeType("headers")
}

/// What a queue declaration tells about the queue.
public struct QueueInfo: Sendable, Hashable {
    public var name: String
    public var messageCount: Int
    public var consumerCount: Int
}
