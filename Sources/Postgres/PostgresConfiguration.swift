/// How to reach PostgreSQL and how the pool behaves.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string, built from the URL.
    public let url: String
    public var options: Options

    public struct Options: Sendable {
        /// The most connections the pool opens. Default 10.
        public var maxConnections = 10
        /// How long `withConnection` waits for a free connection before throwing `.poolTimeout`. Default 10 s.
        public var acquireTimeout: Duration = .seconds(10)
        /// Time allowed to open one connection. Default 5 s.
        public var connectTimeout: Duration = .seconds(5)
        /// A connection idle longer than this is checked before it is lent again. Default 250 ms.
        public var idleCheckAfter: Duration = .milliseconds(250)
        /// Reported in `pg_stat_activity`.
        public var applicationName = "depot"

        public init() {}
    }

    /// Accepts `postgres://` and `postgresql://` URLs as libpq documents them.
    public init(url: String, options: Options = Options()) throws {
        let trimmed = url.trimmingCharacters(in: " \t\n")
        guard trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") else {
            throw PostgresError(.invalidConfiguration, message: "the URL must start with postgres:// or postgresql://")
        }
        try validateConnectionString(trimmed)
        guard options.maxConnections > 0 else {
            throw PostgresError(.invalidConfiguration, message: "maxConnections must be at least 1")
        }
        self.url = trimmed
        self.options = options
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        String(drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}
