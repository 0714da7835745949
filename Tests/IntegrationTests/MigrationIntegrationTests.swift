import Foundation
import Operations
import Postgres
import Testing

@Suite("depot migrate against the real database")
struct MigrationIntegrationTests {
    /// A fresh database per test, so that "twice" and "concurrently" start from nothing.
    static func withScratchDatabase(_ body: (String) async throws -> Void) async throws {
        let admin = try await TestEnvironment.postgres(maxConnections: 1)
        let name = "depot_test_" + UUID().uuidString.prefix(8).lowercased()
        try await admin.withConnection { try await $0.executeScript(unescaped: "CREATE DATABASE \(name)") }
        var components = URLComponents(string: TestEnvironment.databaseURL)!
        components.path = "/" + name
        do {
            try await body(components.string!)
        } catch {
            try? await admin.withConnection {
                try await $0.executeScript(unescaped: "DROP DATABASE \(name) WITH (FORCE)")
            }
            throw error
        }
        try await admin.withConnection { try await $0.executeScript(unescaped: "DROP DATABASE \(name) WITH (FORCE)") }
        await admin.shutdown()
    }

    static func checkSchema(_ url: String) async throws {
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: url))
        let versions = try await pool.withConnection {
            try await $0.query("SELECT version FROM public.depot_migrations ORDER BY version")
        }
        #expect(try versions.map { try $0.decode(0, as: Int.self) } == Migrations.all.map(\.version))
        let schemas = try await pool.withConnection {
            try await $0.query(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ('orders','inventory','payments','edge','eventlog','projections') ORDER BY 1"
            )
        }
        #expect(
            try schemas.map { try $0.decode(0, as: String.self) } == [
                "edge", "eventlog", "inventory", "orders", "payments", "projections",
            ])
        await pool.shutdown()
    }

    @Test("migrating twice, and from two processes at once, leaves one correct schema")
    func twiceAndConcurrently() async throws {
        let binary = TestEnvironment.repositoryRoot.appendingPathComponent(".build/debug/depot")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build depot first: swift build")
        try await Self.withScratchDatabase { url in
            func launch() throws -> Process {
                let process = Process()
                process.executableURL = binary
                process.arguments = ["migrate"]
                var environment = ProcessInfo.processInfo.environment
                environment["DEPOT_DATABASE_URL"] = url
                process.environment = environment
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                return process
            }
            let first = try launch()
            let second = try launch()
            first.waitUntilExit()
            second.waitUntilExit()
            #expect(first.terminationStatus == 0)
            #expect(second.terminationStatus == 0)
            try await Self.checkSchema(url)
            let again = try launch()
            again.waitUntilExit()
            #expect(again.terminationStatus == 0)
            try await Self.checkSchema(url)
        }
    }

    @Test("concurrent migrators in one process apply each migration once")
    func concurrentInProcess() async throws {
        try await Self.withScratchDatabase { url in
            let applied = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let pool = PostgresPool(configuration: try PostgresConfiguration(url: url))
                        let applied = try await Migrator(pool: pool).migrate().count
                        await pool.shutdown()
                        return applied
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(applied == Migrations.all.count)
            try await Self.checkSchema(url)
        }
    }
}
