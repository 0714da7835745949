import AMQP
import Foundation
import Messaging
import Postgres
import Projector

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `depot status`: queues, outbox backlogs, projection lag and dead letters, each with a verdict.
public struct SystemStatus: Sendable {
    public enum Health: String, Sendable, Codable { case ok, warning, failing }

    public struct Queue: Sendable, Codable {
        public var name: String
        public var depth: Int
        public var consumers: Int
        public var publishRate: Double?
        public var deliverRate: Double?
        public var health: Health
        public var note: String
    }

    public struct Outbox: Sendable, Codable {
        public var service: String
        public var backlog: Int
        public var oldestSeconds: Double?
        public var health: Health
        public var note: String
    }

    public struct Projection: Sendable, Codable {
        public var name: String
        public var position: Int64
        public var head: Int64
        /// Events published but not yet in the log (the projector's queue).
        public var unapplied: Int
        /// Events behind: log head − checkpoint + unapplied.
        public var lag: Int64
        public var health: Health
        public var note: String
    }

    /// Connections one kind of process holds, from `pg_stat_activity` by `application_name`.
    public struct ConnectionUse: Sendable, Codable {
        /// `depot-<component>` (`depot-all`, `depot-edge`, `depot-status`, …).
        public var applicationName: String
        public var open: Int
        /// Running a statement right now.
        public var active: Int
    }

    public struct DatabaseConnections: Sendable, Codable {
        public var maxConnections: Int
        /// Client connections to the server from anyone (all databases).
        public var inUse: Int
        /// Depot's, by process kind (this database only).
        public var depot: [ConnectionUse]
        public var health: Health
        public var note: String
    }

    public struct Report: Sendable, Codable {
        public var queues: [Queue]
        public var outboxes: [Outbox]
        public var projections: [Projection]
        public var connections: DatabaseConnections
        public var health: Health
    }

    static let workQueues = ["depot.orders", "depot.inventory", "depot.payments", "depot.projector"]

    let amqp: AMQPConnection
    let pool: PostgresPool
    /// The RabbitMQ management API (`http://user:pass@host:15672`), for message rates; optional.
    let managementURL: String?
    let vhost: String

    public init(amqp: AMQPConnection, pool: PostgresPool, managementURL: String?, vhost: String) {
        self.amqp = amqp
        self.pool = pool
        self.managementURL = managementURL
        self.vhost = vhost
    }

    public func report() async throws -> Report {
        let rates = await managementRates()
        var queues: [Queue] = []
        for name in Self.workQueues + DeadLetters.queues {
            let isDead = name.hasSuffix(".dead")
            guard let info = try? await amqp.inspectQueue(name) else {
                queues.append(
                    Queue(
                        name: name, depth: 0, consumers: 0, health: isDead ? .ok : .failing,
                        note: "not declared: start the component once"))
                continue
            }
            var health = Health.ok
            var note = ""
            if isDead {
                if info.messageCount > 0 { (health, note) = (.warning, "dead letters: see depot dlq show \(name)") }
            } else if info.consumerCount == 0 {
                (health, note) = (.failing, "no consumer: is depot \(name.dropFirst(6)) running?")
            } else if info.messageCount > 1_000 {
                (health, note) = (.warning, "backlog growing")
            }
            queues.append(
                Queue(
                    name: name, depth: info.messageCount, consumers: info.consumerCount, publishRate: rates[name]?.0,
                    deliverRate: rates[name]?.1,
                    health: health, note: note))
        }
        let (outboxes, projections, connections) = try await pool.withConnection {
            connection -> ([Outbox], [Projection], DatabaseConnections) in
            var outboxes: [Outbox] = []
            for service in ["orders", "inventory", "payments"] {
                let (backlog, oldestRow) = try await Messaging.Outbox(schema: service).backlog(on: connection)
                let oldest = oldestRow.map { max(0, Date().timeIntervalSince($0)) }
                let stuck = (oldest ?? 0) > 10
                outboxes.append(
                    Outbox(
                        service: service, backlog: backlog, oldestSeconds: oldest, health: stuck ? .warning : .ok,
                        note: stuck ? "unsent for over 10 s: is the broker reachable from depot \(service)?" : ""))
            }
            let head = try await EventLog.head(on: connection)
            var projections: [Projection] = []
            let checkpoints = try await Projections.checkpoints(on: connection)
            let projector = queues.first { $0.name == "depot.projector" }
            let unapplied = projector?.depth ?? 0
            for name in ["orders", "products"] {
                let position = checkpoints[name] ?? 0
                let lag = head - position + Int64(unapplied)
                let stalled = unapplied > 0 && (projector?.consumers ?? 0) == 0
                let health: Health = stalled ? .failing : lag > 1_000 ? .warning : .ok
                projections.append(
                    Projection(
                        name: name, position: position, head: head, unapplied: unapplied, lag: lag, health: health,
                        note: stalled
                            ? "events waiting and no projector: start depot projector"
                            : lag > 1_000 ? "behind: the projector is catching up" : ""))
            }
            return (outboxes, projections, try await Self.connections(on: connection))
        }
        let all = queues.map(\.health) + outboxes.map(\.health) + projections.map(\.health) + [connections.health]
        let overall: Health = all.contains(.failing) ? .failing : all.contains(.warning) ? .warning : .ok
        return Report(
            queues: queues, outboxes: outboxes, projections: projections, connections: connections, health: overall)
    }

    /// Who holds the server's connections; a warning when fewer than 10% remain.
    static func connections(on connection: PostgresConnection) async throws -> DatabaseConnections {
        let limits = try await connection.query(
            """
            SELECT current_setting('max_connections')::int8 - current_setting('superuser_reserved_connections')::int8,
                   (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
            """)[0]
        let maxConnections = Int(try limits.decode(0, as: Int64.self))
        let inUse = Int(try limits.decode(1, as: Int64.self))
        let depot = try await connection.query(
            """
            SELECT application_name, count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity
            WHERE datname = current_database() AND application_name LIKE 'depot-%' GROUP BY 1 ORDER BY 1
            """
        ).map { row in
            ConnectionUse(
                applicationName: try row.decode(0), open: Int(try row.decode(1, as: Int64.self)),
                active: Int(try row.decode(2, as: Int64.self)))
        }
        let crowded = inUse * 10 >= maxConnections * 9
        return DatabaseConnections(
            maxConnections: maxConnections, inUse: inUse, depot: depot, health: crowded ? .warning : .ok,
            note: crowded
                ? "\(inUse) of \(maxConnections) connections in use: lower DEPOT_DATABASE_POOL_SIZE or raise max_connections"
                : "")
    }

    /// Publish and deliver rates per queue from the management API; empty when it is not reachable.
    func managementRates() async -> [String: (Double?, Double?)] {
        guard let managementURL, var base = URLComponents(string: managementURL) else { return [:] }
        let user = base.user ?? "guest"
        let password = base.password ?? "guest"
        base.user = nil
        base.password = nil
        let vhostPath = vhost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? vhost
        guard let url = URL(string: (base.string ?? "") + "/api/queues/\(vhostPath)") else { return [:] }
        var request = URLRequest(url: url, timeoutInterval: 2)
        request.setValue(
            "Basic " + Data("\(user):\(password)".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        guard let (data, _) = try? await URLSession.shared.data(for: request),
            let queues = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { return [:] }
        var rates: [String: (Double?, Double?)] = [:]
        for queue in queues {
            guard let name = queue["name"] as? String else { continue }
            let stats = queue["message_stats"] as? [String: Any]
            let publish = (stats?["publish_details"] as? [String: Any])?["rate"] as? Double
            let deliver = (stats?["deliver_get_details"] as? [String: Any])?["rate"] as? Double
            rates[name] = (publish, deliver)
        }
        return rates
    }
}
