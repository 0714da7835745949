import HTTPTypes
import Hummingbird
import Logging

/// The request context of every edge route: who is calling (from the bearer token, if any).
public struct EdgeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The verified caller; nil for a request without a token.
    public var caller: Caller?
    /// The client's address, the rate-limit key for requests without a token.
    public var remoteAddress: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.caller = nil
        self.remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// docs/interface.md §3: bodies over 64 KiB get 413.
    public var maxUploadSize: Int { 64 * 1024 }
}

/// A verified bearer token's subject and role.
public struct Caller: Sendable, Hashable {
    public enum Role: String, Sendable, Codable { case customer, admin }
    public var subject: String
    public var role: Role
}
