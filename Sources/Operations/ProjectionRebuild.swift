import DepotModel
import Foundation
import Postgres
import Projector

/// `depot replay projections`: rebuilds projections from the event log while the system runs.
///
/// The rebuild goes into tables aside (schema `projections_rebuild`), reading the log in
/// position order; then, in one transaction that holds the event log's append lock (the
/// projector waits meanwhile), it applies the events that arrived during the rebuild and swaps
/// the new tables in. Readers see the old rows or the new ones, never a half-built projection.
public struct ProjectionRebuild: Sendable {
    /// What each projection name covers.
    public static let tables: [String: [String]] = ["orders": ["orders", "order_history"], "products": ["products"]]
    public static let asideSchema = "projections_rebuild"

    public struct Progress: Sendable {
        public var done: Int64
        public var total: Int64
        public var eventsPerSecond: Double
        public var remaining: Duration? {
            guard eventsPerSecond > 0 else { return nil }
            return .seconds(Double(max(0, total - done)) / eventsPerSecond)
        }
    }

    /// Rows that differ between the live projection and the rebuilt one.
    public struct Difference: Sendable {
        public var table: String
        public var added: Int  // in the rebuild, not live
        public var removed: Int  // live, not in the rebuild
        public var different: Int  // same key, other values
        public var samples: [String]
        public var isEmpty: Bool { added == 0 && removed == 0 && different == 0 }
    }

    let pool: PostgresPool
    let projections: [String]
    let batchSize: Int
    /// Rebuild only the rows that events from this position on touched (each from its whole history).
    let fromPosition: Int64?

    /// `projections`: names from `tables` (all when empty).
    public init(pool: PostgresPool, projections: [String] = [], fromPosition: Int64? = nil, batchSize: Int = 5_000)
        throws
    {
        let unknown = projections.filter { Self.tables[$0] == nil }
        guard unknown.isEmpty else {
            throw PostgresError(
                .invalidConfiguration,
                message: "unknown projection \(unknown.joined(separator: ", ")); known: orders, products")
        }
        self.pool = pool
        self.projections = projections.isEmpty ? Self.tables.keys.sorted() : projections
        self.batchSize = batchSize
        self.fromPosition = fromPosition
    }

    var tableNames: [String] { projections.flatMap { Self.tables[$0]! } }
    public var projectionNames: [String] { projections }

    /// Rebuilds aside and switches the live projection over; returns the position it is at.
    @discardableResult
    public func run(progress: @Sendable (Progress) -> Void = { _ in }) async throws -> Int64 {
        try await alone {
            let keys = try await affectedKeys()
            try await prepareAside()
            let built = try await build(from: 0, keys: keys, progress: progress)
            return try await switchOver(after: built, keys: keys)
        }
    }

    /// Thrown when another rebuild (`depot replay projections`, a console dry run) is running.
    public struct Busy: Error, CustomStringConvertible {
        public var description: String {
            "another projection rebuild is running (depot replay projections, or a dry run from the console); try again when it has finished"
        }
    }

    /// Every rebuild works in the one aside schema: a second one at the same time would drop the
    /// first one's tables between its batches, and the first would then swap in a partial
    /// projection. A session advisory lock, held on a connection of its own for the whole
    /// rebuild (and so released if the process dies), lets only one run.
    func alone<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        var options = pool.configuration.options
        options.maxConnections = 1
        options.applicationName += "-rebuild-lock"
        let guardPool = PostgresPool(
            configuration: try PostgresConfiguration(url: pool.configuration.url, options: options))
        do {
            let result = try await guardPool.withConnection { connection in
                guard
                    try await connection.query("SELECT pg_try_advisory_lock(\(Self.rebuildLockKey))")[0].decode(
                        0, as: Bool.self)
                else { throw Busy() }
                // The rebuild's own work runs on the default executor, not this connection's thread.
                let result = try await withTaskExecutorPreference(globalConcurrentExecutor) { try await body() }
                _ = try await connection.query("SELECT pg_advisory_unlock(\(Self.rebuildLockKey))")
                return result
            }
            await guardPool.shutdown()
            return result
        } catch {
            await guardPool.shutdown()  // closing the session releases the lock
            throw error
        }
    }

    public static let rebuildLockKey: Int64 = 0x6465_706f_745f_7262  // "depot_rb"

    /// With `fromPosition`: the orders and skus that events from there on touched; nil otherwise.
    func affectedKeys() async throws -> Set<String>? {
        guard let fromPosition else { return nil }
        var keys: Set<String> = []
        var at = fromPosition - 1
        while true {
            let events = try await pool.withConnection { try await EventLog.read(after: at, limit: batchSize, on: $0) }
            guard let last = events.last else { return keys }
            for event in events {
                keys.insert(event.correlationId)
                keys.formUnion(try ProjectorHandler.productsMoved(by: event))
            }
            at = last.position
        }
    }

    /// Whether an event shapes a row whose key is in `keys` (every event when `keys` is nil).
    func isRelevant(_ event: StoredEvent, to keys: Set<String>?) throws -> Bool {
        guard let keys else { return true }
        if keys.contains(event.correlationId) { return true }
        return try !keys.isDisjoint(with: ProjectorHandler.productsMoved(by: event))
    }

    /// Rebuilds aside (up to the head as it is now) and compares it with the live rows.
    public func dryRun(samples: Int = 5, progress: @Sendable (Progress) -> Void = { _ in }) async throws -> [Difference]
    {
        try await alone { try await dryRunAlone(samples: samples, progress: progress) }
    }

    private func dryRunAlone(samples: Int, progress: @Sendable (Progress) -> Void) async throws -> [Difference] {
        let keys = try await affectedKeys()
        try await prepareAside()
        let built = try await build(from: 0, keys: keys, progress: progress)
        // Compare against the live rows at the same log position: hold the append lock while
        // catching up, so the projector cannot move the live tables past the rebuild meanwhile.
        let differences = try await pool.withTransaction { connection -> [Difference] in
            try await connection.execute("SELECT pg_advisory_xact_lock(\(EventLog.lockKeyForOperators))")
            _ = try await apply(after: built, keys: keys, on: connection)
            var differences: [Difference] = []
            for table in tableNames {
                differences.append(try await difference(table, keys: keys, samples: samples, on: connection))
            }
            return differences
        }
        try await pool.withConnection {
            try await $0.execute("DROP SCHEMA IF EXISTS \(unescaped: Self.asideSchema) CASCADE")
        }
        return differences
    }

    func prepareAside() async throws {
        try await pool.withTransaction { connection in
            try await connection.execute("DROP SCHEMA IF EXISTS \(unescaped: Self.asideSchema) CASCADE")
            try await connection.execute("CREATE SCHEMA \(unescaped: Self.asideSchema)")
            for table in tableNames + ["checkpoints"] {
                try await connection.execute(
                    "CREATE TABLE \(unescaped: Self.asideSchema).\(unescaped: table) (LIKE projections.\(unescaped: table) INCLUDING ALL)"
                )
            }
        }
    }

    /// Applies the log from `position` to the head as it is when the build starts, in batches.
    func build(from position: Int64, keys: Set<String>?, progress: @Sendable (Progress) -> Void) async throws -> Int64 {
        let head = try await pool.withConnection { try await EventLog.head(on: $0) }
        let started = ContinuousClock.now
        var at = position
        var done: Int64 = 0
        let total = try await pool.withConnection { connection in
            try await connection.query(
                "SELECT count(*) FROM eventlog.events WHERE position > \(position) AND position <= \(head)"
            ).first!.decode(0, as: Int64.self)
        }
        progress(Progress(done: 0, total: total, eventsPerSecond: 0))
        let target = Projections(schema: Self.asideSchema, only: Set(projections))
        // The next batch is read and decoded (on another connection) while this one is written.
        func readAhead(after position: Int64) -> Task<
            (last: Int64?, count: Int64, prepared: Projections.PreparedEvents), any Error
        > {
            Task {
                let events = try await pool.withConnection {
                    try await EventLog.read(after: position, limit: batchSize, on: $0)
                }
                .filter { $0.position <= head }
                return (
                    events.last?.position, Int64(events.count),
                    try Projections.prepare(try events.filter { try isRelevant($0, to: keys) })
                )
            }
        }
        var next = at < head ? readAhead(after: at) : nil
        while let pending = next {
            let batch = try await pending.value
            guard let last = batch.last else { break }
            next = last < head ? readAhead(after: last) : nil
            do {
                try await pool.withTransaction { try await target.apply(batch.prepared, on: $0) }
            } catch {
                next?.cancel()
                throw error
            }
            at = last
            done += batch.count
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            progress(Progress(done: done, total: total, eventsPerSecond: seconds > 0 ? Double(done) / seconds : 0))
        }
        return max(at, head)
    }

    /// Applies every event after `position` to the aside tables on `connection`; returns the last position.
    func apply(after position: Int64, keys: Set<String>?, on connection: PostgresConnection) async throws -> Int64 {
        var at = position
        let target = Projections(schema: Self.asideSchema, only: Set(projections))
        while true {
            let events = try await EventLog.read(after: at, limit: batchSize, on: connection)
            guard let last = events.last else { return at }
            try await target.apply(try events.filter { try isRelevant($0, to: keys) }, on: connection)
            try await connection.flush()
            at = last.position
        }
    }

    /// Catches up under the append lock and swaps the rebuilt tables in, atomically.
    func switchOver(after position: Int64, keys: Set<String>?) async throws -> Int64 {
        try await pool.withTransaction { connection in
            try await connection.execute("SELECT pg_advisory_xact_lock(\(EventLog.lockKeyForOperators))")
            let last = try await apply(after: position, keys: keys, on: connection)
            if let keys {
                // A tail rebuild replaces only the rows it rebuilt.
                let list = try PostgresJSON(encoding: keys.sorted())
                for table in tableNames {
                    let key = Self.keyColumn(table)
                    try await connection.execute(
                        "DELETE FROM projections.\(unescaped: table) WHERE \(unescaped: key)::text IN (SELECT jsonb_array_elements_text(\(list)))"
                    )
                    try await connection.execute(
                        """
                        INSERT INTO projections.\(unescaped: table) SELECT * FROM \(unescaped: Self.asideSchema).\(unescaped: table)
                        WHERE \(unescaped: key)::text IN (SELECT jsonb_array_elements_text(\(list)))
                        """)
                }
                try await connection.execute("DROP SCHEMA \(unescaped: Self.asideSchema) CASCADE")
                return last
            }
            for table in tableNames {
                try await connection.execute("DROP TABLE projections.\(unescaped: table)")
                try await connection.execute(
                    "ALTER TABLE \(unescaped: Self.asideSchema).\(unescaped: table) SET SCHEMA projections")
            }
            for name in projections {
                try await connection.execute(
                    """
                    INSERT INTO projections.checkpoints (projection, position) VALUES (\(name), \(last))
                    ON CONFLICT (projection) DO UPDATE SET position = excluded.position
                    """)
            }
            try await connection.execute("DROP SCHEMA \(unescaped: Self.asideSchema) CASCADE")
            return last
        }
    }

    /// Rows added, removed and changed between `projections.table` and the rebuild.
    /// The column naming the order or product a row belongs to.
    static func keyColumn(_ table: String) -> String {
        table == "products" ? "sku" : table == "orders" ? "id" : "order_id"
    }

    func difference(_ table: String, keys: Set<String>?, samples: Int, on connection: PostgresConnection) async throws
        -> Difference
    {
        let key = table == "products" ? "sku" : table == "orders" ? "id" : "order_id, position"
        var live = "projections.\(table)"
        var aside = "\(Self.asideSchema).\(table)"
        if let keys {
            // Only the rows a tail rebuild covers (keys are uuids and skus: [A-Za-z0-9._-]).
            let list = keys.sorted().filter { $0.allSatisfy { $0.isLetter || $0.isNumber || "._-".contains($0) } }.map {
                "'\($0)'"
            }.joined(separator: ",")
            let filter = list.isEmpty ? "false" : "\(Self.keyColumn(table))::text IN (\(list))"
            live = "(SELECT * FROM projections.\(table) WHERE \(filter))"
            aside = "(SELECT * FROM \(Self.asideSchema).\(table) WHERE \(filter))"
        }
        func count(_ sql: String) async throws -> Int {
            try await connection.query(PostgresQuery(unescaped: sql)).first!.decode(0, as: Int.self)
        }
        let added = try await count(
            "SELECT count(*) FROM \(aside) AS a WHERE NOT EXISTS (SELECT 1 FROM \(live) AS l WHERE (l.\(key.replacingOccurrences(of: ", ", with: ", l."))) = (a.\(key.replacingOccurrences(of: ", ", with: ", a."))))"
        )
        let removed = try await count(
            "SELECT count(*) FROM \(live) AS l WHERE NOT EXISTS (SELECT 1 FROM \(aside) AS a WHERE (l.\(key.replacingOccurrences(of: ", ", with: ", l."))) = (a.\(key.replacingOccurrences(of: ", ", with: ", a."))))"
        )
        let changedRows = try await connection.query(
            PostgresQuery(
                unescaped: """
                    SELECT row_to_json(l)::text, row_to_json(a)::text FROM \(live) AS l JOIN \(aside) AS a USING (\(key))
                    WHERE row_to_json(l)::jsonb <> row_to_json(a)::jsonb
                    """))
        var sampleLines: [String] = []
        for row in changedRows.prefix(samples) {
            sampleLines.append(
                "live    \(try row.decode(0, as: String.self))\nrebuilt \(try row.decode(1, as: String.self))")
        }
        return Difference(
            table: table, added: added, removed: removed, different: changedRows.count, samples: sampleLines)
    }
}
