import Foundation
import Testing

@testable import Postgres

@Suite("PostgreSQL against the real database")
struct PostgresIntegrationTests {
    static func table(_ pool: PostgresPool, _ definition: String) async throws -> String {
        let name = "test_" + UUID().uuidString.prefix(8).lowercased()
        try await pool.withConnection {
            try await $0.executeScript(unescaped: "CREATE TABLE public.\(name) (\(definition))")
        }
        return name
    }

    static func drop(_ pool: PostgresPool, _ table: String) async throws {
        try await pool.withConnection { try await $0.executeScript(unescaped: "DROP TABLE IF EXISTS public.\(table)") }
    }

    @Test("hostile strings are bound, never spliced into SQL")
    func hostileStrings() async throws {
        let pool = try await TestEnvironment.postgres()
        let table = try await Self.table(pool, "id serial PRIMARY KEY, value text NOT NULL")
        let hostile = [
            "'; DROP TABLE public.\(table); --", "Robert'); DELETE FROM public.\(table) WHERE ('1'='1",
            "$1", "\\x00\\'", "\"quoted\"", "ünïcødé ✓ 🚀", String(repeating: "'", count: 1000), "", "E'\\n'",
        ]
        for value in hostile {
            try await pool.withConnection {
                try await $0.execute("INSERT INTO public.\(unescaped: table) (value) VALUES (\(value))")
            }
        }
        let rows = try await pool.withConnection {
            try await $0.query("SELECT value FROM public.\(unescaped: table) ORDER BY id")
        }
        #expect(try rows.map { try $0.decode(0, as: String.self) } == hostile)
        let matched = try await pool.withConnection {
            try await $0.query("SELECT count(*) FROM public.\(unescaped: table) WHERE value = \(hostile[0])")
        }
        #expect(try matched[0].decode(0, as: Int.self) == 1)
        try await Self.drop(pool, table)
        await pool.shutdown()
    }

    @Test("every supported type round-trips, NULL included")
    func typesRoundTrip() async throws {
        let pool = try await TestEnvironment.postgres()
        let table = try await Self.table(
            pool,
            "t text, i8 bigint, i4 integer, b boolean, u uuid, ts timestamptz, j jsonb, raw bytea, d double precision, maybe text"
        )
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_764_000_000.123456)
        let json = PostgresJSON(#"{"nested": {"list": [1, 2, 3]}, "s": "ü"}"#)
        let bytes = [UInt8](0...255)
        let nothing: String? = nil
        try await pool.withConnection { connection in
            try await connection.execute(
                """
                INSERT INTO public.\(unescaped: table) (t, i8, i4, b, u, ts, j, raw, d, maybe)
                VALUES (\("text ✓"), \(Int64.min), \(Int32.max), \(true), \(id), \(when), \(json), \(bytes), \(2.5), \(nothing))
                """)
        }
        let row = try #require(
            try await pool.withConnection { try await $0.query("SELECT * FROM public.\(unescaped: table)") }.first)
        #expect(try row.decode("t", as: String.self) == "text ✓")
        #expect(try row.decode("i8", as: Int64.self) == Int64.min)
        #expect(try row.decode("i4", as: Int32.self) == Int32.max)
        #expect(try row.decode("b", as: Bool.self) == true)
        #expect(try row.decode("u", as: UUID.self) == id)
        let readBack = try row.decode("ts", as: Date.self)
        #expect(abs(readBack.timeIntervalSince1970 - when.timeIntervalSince1970) < 0.000_001)
        let readJSON = try row.decode("j", as: PostgresJSON.self)
        struct Shape: Decodable, Equatable {
            struct Nested: Decodable, Equatable { var list: [Int] }
            var nested: Nested
            var s: String
        }
        #expect(try readJSON.decode(Shape.self) == Shape(nested: .init(list: [1, 2, 3]), s: "ü"))
        #expect(try row.decode("raw", as: [UInt8].self) == bytes)
        #expect(try row.decode("d", as: Double.self) == 2.5)
        #expect(try row.decode("maybe", as: String?.self) == nil)
        #expect(row.isNull(9))
        try await Self.drop(pool, table)
        await pool.shutdown()
    }

    @Test("an error thrown inside a transaction leaves no row")
    func transactionRollsBack() async throws {
        let pool = try await TestEnvironment.postgres()
        let table = try await Self.table(pool, "id integer PRIMARY KEY")
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await pool.withTransaction { connection in
                try await connection.execute("INSERT INTO public.\(unescaped: table) VALUES (\(1))")
                throw Boom()
            }
        }
        try await pool.withTransaction { try await $0.execute("INSERT INTO public.\(unescaped: table) VALUES (\(2))") }
        let ids = try await pool.withConnection { try await $0.query("SELECT id FROM public.\(unescaped: table)") }
        #expect(try ids.map { try $0.decode(0, as: Int.self) } == [2])
        try await Self.drop(pool, table)
        await pool.shutdown()
    }

    @Test("a unique violation exposes SQLSTATE 23505, its constraint and detail")
    func uniqueViolation() async throws {
        let pool = try await TestEnvironment.postgres()
        let table = try await Self.table(pool, "id integer PRIMARY KEY")
        try await pool.withConnection { try await $0.execute("INSERT INTO public.\(unescaped: table) VALUES (\(7))") }
        do {
            try await pool.withConnection {
                try await $0.execute("INSERT INTO public.\(unescaped: table) VALUES (\(7))")
            }
            Issue.record("the duplicate insert succeeded")
        } catch let error as PostgresError {
            #expect(error.kind == .server)
            #expect(error.code == .uniqueViolation)
            #expect(error.constraint == "\(table)_pkey")
            #expect(error.detail?.contains("(id)=(7)") == true)
            #expect(error.message.contains("duplicate key"))
        }
        // The connection that saw the error is still usable.
        let count = try await pool.withConnection {
            try await $0.query("SELECT count(*) FROM public.\(unescaped: table)")
        }
        #expect(try count[0].decode(0, as: Int.self) == 1)
        try await Self.drop(pool, table)
        await pool.shutdown()
    }

    @Test("an exhausted pool makes callers wait, then time out with a clear error")
    func poolExhaustion() async throws {
        let pool = try await TestEnvironment.postgres(maxConnections: 1, acquireTimeout: .seconds(1))
        // Connected first, so that connecting on a busy machine does not count against the wait.
        _ = try await pool.withConnection { try await $0.query("SELECT 1") }
        // A short hold: the waiter gets the connection when it comes back.
        async let holder: Void = pool.withConnection { connection in
            try await connection.execute("SELECT pg_sleep(0.1)")
        }
        try await Task.sleep(for: .milliseconds(20))
        let waited = try await pool.withConnection { try await $0.query("SELECT 42") }
        #expect(try waited[0].decode(0, as: Int.self) == 42)
        try await holder

        // A long hold: the waiter gives up after the acquire timeout.
        async let longHolder: Void = pool.withConnection { connection in
            try await connection.execute("SELECT pg_sleep(3)")
        }
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        do {
            _ = try await pool.withConnection { try await $0.query("SELECT 1") }
            Issue.record("acquired a connection from an exhausted pool")
        } catch let error as PostgresError {
            #expect(error.kind == .poolTimeout)
            #expect(error.message.contains("no database connection became free"))
            #expect(ContinuousClock.now - started >= .milliseconds(950))
        }
        try await longHolder
        await pool.shutdown()
    }

    @Test("past the 512 statements a connection prepares, statements still run with their parameters")
    func statementsPastThePreparedBound() async throws {
        let pool = try await TestEnvironment.postgres(maxConnections: 1)
        let sums = try await pool.withConnection { connection in
            var sums: [Int] = []
            for index in 0..<530 {
                let rows = try await connection.query("SELECT \(unescaped: String(index))::int + \(1_000)::int")
                sums.append(try rows[0].decode(0, as: Int.self))
            }
            return sums
        }
        #expect(sums == (0..<530).map { $0 + 1_000 })
        await pool.shutdown()
    }

    @Test("many concurrent transactions share a small pool")
    func concurrentTransactions() async throws {
        // The last of 200 waiters waits for 50 commits of each connection: on a busy machine that
        // is longer than the usual acquire timeout, and this test is about sharing, not speed.
        let pool = try await TestEnvironment.postgres(maxConnections: 4, acquireTimeout: .seconds(60))
        let table = try await Self.table(pool, "id integer PRIMARY KEY")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    _ = try await pool.withTransaction {
                        try await $0.execute("INSERT INTO public.\(unescaped: table) VALUES (\(i))")
                    }
                }
            }
            try await group.waitForAll()
        }
        let count = try await pool.withConnection {
            try await $0.query("SELECT count(*) FROM public.\(unescaped: table)")
        }
        #expect(try count[0].decode(0, as: Int.self) == 200)
        #expect(pool.usage.open <= 4)
        try await Self.drop(pool, table)
        await pool.shutdown()
    }

    @Test("inside a lease, statements run on the connection's own thread, not the cooperative pool")
    func confinement() async throws {
        let pool = try await TestEnvironment.postgres(maxConnections: 1)
        let (onThreadBefore, onThreadAfter, thread) = try await pool.withConnection { connection in
            let before = connection.thread.isCurrent
            _ = try await connection.query("SELECT 1")
            return (before, connection.thread.isCurrent, connection.thread)
        }
        #expect(onThreadBefore && onThreadAfter)
        #expect(!thread.isCurrent)
        await pool.shutdown()
    }

    @Test("LISTEN delivers NOTIFY payloads, after a first 'look again' marker")
    func listen() async throws {
        let pool = try await TestEnvironment.postgres()
        let channel = "test_" + UUID().uuidString.prefix(8).lowercased()
        let notifications = PostgresNotifications(configuration: pool.configuration, channels: [channel])
        var iterator = notifications.makeAsyncIterator()
        let marker = try #require(await iterator.next())
        #expect(marker.channel == channel && marker.mayHaveMissedNotifications)
        for payload in ["first", "it's \"quoted\""] {
            try await pool.withConnection { try await $0.execute("SELECT pg_notify(\(channel), \(payload))") }
        }
        let first = try #require(await iterator.next())
        let second = try #require(await iterator.next())
        #expect([first.payload, second.payload] == ["first", "it's \"quoted\""])
        #expect(!first.mayHaveMissedNotifications && first.channel == channel)
        await pool.shutdown()
    }

    @Test("a pipeline sends several statements in one round trip")
    func pipeline() async throws {
        let pool = try await TestEnvironment.postgres()
        let table = try await Self.table(pool, "id integer PRIMARY KEY")
        let results = try await pool.withTransaction { connection in
            try await connection.pipeline([
                "INSERT INTO public.\(unescaped: table) VALUES (\(1))",
                "INSERT INTO public.\(unescaped: table) VALUES (\(2))",
                "SELECT count(*) FROM public.\(unescaped: table)",
            ])
        }
        #expect(results.count == 3)
        #expect(try results[2][0].decode(0, as: Int.self) == 2)
        await #expect(throws: PostgresError.self) {
            try await pool.withTransaction { connection in
                _ = try await connection.pipeline([
                    "INSERT INTO public.\(unescaped: table) VALUES (\(3))",
                    "INSERT INTO public.\(unescaped: table) VALUES (\(1))",
                ])
            }
        }
        let count = try await pool.withConnection {
            try await $0.query("SELECT count(*) FROM public.\(unescaped: table)")
        }
        #expect(try count[0].decode(0, as: Int.self) == 2)
        try await Self.drop(pool, table)
        await pool.shutdown()
    }
    @Test("a connection on a read-only server (a standby mid-failover) is unavailable, and the pool opens another")
    func readOnlyServerIsUnavailableAndItsConnectionDropped() async throws {
        let pool = try await TestEnvironment.postgres(maxConnections: 1)
        let table = try await Self.table(pool, "id integer PRIMARY KEY")
        // The session refuses writes from now on, as a standby's would.
        let standbyLike = try await pool.withConnection { connection in
            try await connection.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            return try await connection.query("SELECT pg_backend_pid()")[0].decode(0, as: Int.self)
        }
        let refused = await #expect(throws: PostgresError.self) {
            try await pool.withTransaction {
                try await $0.execute("INSERT INTO public.\(unescaped: table) VALUES (\(1))")
            }
        }
        #expect(
            refused?.code == .readOnlyTransaction && refused?.isUnavailable == true, "\(String(reflecting: refused))")
        let next = try await pool.withTransaction { connection in
            try await connection.execute("INSERT INTO public.\(unescaped: table) VALUES (\(1))")
            return try await connection.query("SELECT pg_backend_pid()")[0].decode(0, as: Int.self)
        }
        #expect(next != standbyLike, "the read-only connection was lent again")
        try await Self.drop(pool, table)
        await pool.shutdown()
    }
}
