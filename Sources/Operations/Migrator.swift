import Logging
import Postgres

/// Applies `Migrations.all` under a PostgreSQL advisory lock, so that any number of processes
/// may run it at once: the first applies what is missing, the others then find nothing to do.
public struct Migrator: Sendable {
    /// The advisory lock key, "depot" in ASCII.
    static let lockKey: Int64 = 0x6465_706F_74
    let pool: PostgresPool
    let migrations: [Migration]

    public init(pool: PostgresPool, migrations: [Migration] = Migrations.all) {
        self.pool = pool
        self.migrations = migrations
    }

    public struct MigrationError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Applies every missing migration, each in its own transaction, and returns them.
    @discardableResult
    public func migrate(progress: @Sendable (String) -> Void = { _ in }) async throws -> [Migration] {
        try await pool.withConnection { connection in
            try await connection.execute("SELECT pg_advisory_lock(\(Self.lockKey))")
            do {
                let applied = try await applyMissing(on: connection, progress: progress)
                try await connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))")
                return applied
            } catch {
                _ = try? await connection.execute("SELECT pg_advisory_unlock(\(Self.lockKey))")
                throw error
            }
        }
    }

    private func applyMissing(on connection: PostgresConnection, progress: @Sendable (String) -> Void) async throws
        -> [Migration]
    {
        try await connection.executeScript(
            unescaped: """
                CREATE TABLE IF NOT EXISTS public.depot_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
        var recorded: [Int: String] = [:]
        for row in try await connection.query("SELECT version, name FROM public.depot_migrations") {
            recorded[try row.decode(0, as: Int.self)] = try row.decode(1, as: String.self)
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0.name) })
        for (version, name) in recorded.sorted(by: { $0.key < $1.key }) {
            guard let expected = known[version] else {
                throw MigrationError(
                    description:
                        "the database has migration \(version) (\(name)), which this build does not know: run a newer depot"
                )
            }
            guard expected == name else {
                throw MigrationError(
                    description: "migration \(version) is '\(name)' in the database but '\(expected)' in this build")
            }
        }
        var applied: [Migration] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) where recorded[migration.version] == nil {
            progress("applying migration \(migration.version): \(migration.name)")
            try await connection.execute("BEGIN")
            do {
                try await connection.executeScript(unescaped: migration.sql)
                try await connection.execute(
                    "INSERT INTO public.depot_migrations (version, name) VALUES (\(migration.version), \(migration.name))"
                )
                try await connection.execute("COMMIT")
            } catch {
                _ = try? await connection.execute("ROLLBACK")
                throw error
            }
            applied.append(migration)
        }
        return applied
    }

    /// The highest applied version, or 0 on an empty database.
    public func currentVersion() async throws -> Int {
        try await pool.withConnection { connection in
            let exists = try await connection.query("SELECT to_regclass('public.depot_migrations') IS NOT NULL")
            guard try exists[0].decode(0, as: Bool.self) else { return 0 }
            let rows = try await connection.query("SELECT coalesce(max(version), 0) FROM public.depot_migrations")
            return try rows[0].decode(0, as: Int.self)
        }
    }
}
