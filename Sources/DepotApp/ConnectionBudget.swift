/// How one process shares out its PostgreSQL connections (`DEPOT_DATABASE_POOL_SIZE`).
///
/// Users run Depot against a database they size, so a process holds at most `total`
/// connections, listeners included, and the work it takes on follows from that: each consumer
/// handles as many deliveries at once as the pool can serve, never more. The default, 8 per
/// component, lets two replicas of every worker and two edges (80 connections) run on a stock
/// PostgreSQL (`max_connections = 100`, 3 reserved) with room left for operators.
public struct ConnectionBudget: Sendable, Equatable, CustomStringConvertible {
    public static let perComponent = 8
    /// Handlers at once per consumer, at most (more only queue for the pool).
    public static let maxHandlerConcurrency = 8

    /// Connections the process may hold in all.
    public var total: Int
    /// LISTEN connections: one per outbox relay, one for the edge's projection waiters.
    public var listeners: Int
    /// The pool every component shares.
    public var primary: Int
    /// The edge's pool on `DEPOT_DATABASE_READ_URL`; 0 when reads use the primary pool.
    public var read: Int
    /// The simulated payment provider's own pool (it stands for a remote service).
    public var provider: Int
    /// Deliveries each consumer handles at once.
    public var handlerConcurrency: Int
    /// Connections opened at start; fewer available means the process cannot work.
    public var minimum: Int { listeners + 2 + (read > 0 ? 1 : 0) + (provider > 0 ? 1 : 0) }

    /// The plan for a process that runs `components` (and the edge), within `size` or the default.
    public static func plan(
        components: [Component], edge: Bool, separateReadURL: Bool, size: Int?
    ) throws(ConfigurationError) -> ConnectionBudget {
        let units = components.count + (edge ? 1 : 0)
        let total = size ?? perComponent * max(1, units)
        let relays = components.filter { $0.outboxSchema != nil }.count
        let consumers = components.filter { $0 != .projector }.count
        let listeners = relays + (edge ? 1 : 0)
        // The provider holds its connection for about a third of a payment's handling.
        let provider = components.contains(.payments) ? min(maxHandlerConcurrency, max(1, (total - listeners) / 3)) : 0
        let needed = listeners + 2 + (edge && separateReadURL ? 1 : 0) + provider
        guard total >= needed else {
            let names = (components.map(\.rawValue) + (edge ? ["edge"] : [])).joined(separator: ", ")
            throw ConfigurationError(
                setting: "DEPOT_DATABASE_POOL_SIZE",
                problem:
                    "\(total) is too few for \(names): it needs at least \(needed) (\(listeners) listening, 2 working\(provider > 0 ? ", \(provider) for the payment provider" : "")\(edge && separateReadURL ? ", 1 on the read URL" : ""))"
            )
        }
        let shared = total - listeners - provider
        let read = edge && separateReadURL ? max(1, shared / (2 + consumers)) : 0
        let primary = shared - read
        // Up to one delivery per shared connection: the relay, the watchers and the probes hold
        // one only for a moment and queue for it like a handler (none waits on another), so
        // reserving connections for them would only idle them.
        let concurrency = consumers == 0 ? 0 : min(maxHandlerConcurrency, max(1, primary / consumers))
        return ConnectionBudget(
            total: total, listeners: listeners, primary: primary, read: read, provider: provider,
            handlerConcurrency: concurrency)
    }

    public var description: String {
        "\(total) connections: \(primary) shared, \(listeners) listening"
            + (read > 0 ? ", \(read) reading" : "") + (provider > 0 ? ", \(provider) for the payment provider" : "")
            + (handlerConcurrency > 0 ? "; \(handlerConcurrency) deliveries at once per consumer" : "")
    }
}
