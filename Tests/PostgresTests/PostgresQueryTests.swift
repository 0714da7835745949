import Foundation
import Testing

@testable import Postgres

@Suite("PostgresQuery and values")
struct PostgresQueryTests {
    @Test("interpolated values become numbered parameters, never SQL text")
    func binds() {
        let name = "'; DROP TABLE users; --"
        let limit = 10
        let nothing: Int? = nil
        let query: PostgresQuery = "SELECT * FROM users WHERE name = \(name) AND n = \(nothing) LIMIT \(limit)"
        #expect(query.sql == "SELECT * FROM users WHERE name = $1 AND n = $2 LIMIT $3")
        #expect(query.binds.count == 3)
        #expect(query.binds[0]?.bytes == Array(name.utf8))
        #expect(query.binds[1] == nil)
        #expect(query.binds[2]?.typeOID == 20)
    }

    @Test("unescaped text is the only way to put raw SQL in")
    func unescaped() {
        let table = "orders.outbox"
        let query: PostgresQuery = "SELECT count(*) FROM \(unescaped: table) WHERE id > \(5)"
        #expect(query.sql == "SELECT count(*) FROM orders.outbox WHERE id > $1")
    }

    @Test("timestamps round-trip through PostgreSQL's text form with microseconds")
    func timestamps() throws {
        let date = Date(timeIntervalSince1970: 1_764_000_000.123456)
        let text = PostgresTimestamp.format(date)
        #expect(text == "2025-11-24T16:00:00.123456Z")
        let parsed = try #require(PostgresTimestamp.parse("2025-11-24 16:00:00.123456+00"))
        #expect(abs(parsed.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_001)
        #expect(PostgresTimestamp.parse("2025-11-24 18:00:00+02")?.timeIntervalSince1970 == 1_764_000_000)
        #expect(PostgresTimestamp.parse("1969-12-31 23:59:59.5+00")?.timeIntervalSince1970 == -0.5)
        #expect(PostgresTimestamp.parse("nonsense") == nil)
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(
            PostgresTimestamp.format(Date(timeIntervalSince1970: 253_402_300_799.5)) == "9999-12-31T23:59:59.500000Z")
        for _ in 0..<1_000 {
            let date = Date(timeIntervalSince1970: Double(Int64.random(in: -5_000_000_000...5_000_000_000)) / 1_000)
            #expect(
                PostgresTimestamp.parse(
                    PostgresTimestamp.format(date).replacingOccurrences(of: "T", with: " ").replacingOccurrences(
                        of: "Z", with: "+00")) == date)
        }
    }

    @Test("uuids decode from PostgreSQL's form by hand and from any other form Foundation reads")
    func uuids() throws {
        let uuid = UUID()
        #expect(try UUID(postgresText: uuid.uuidString.lowercased()) == uuid)
        #expect(try UUID(postgresText: uuid.uuidString) == uuid)
        #expect(
            try UUID(postgresText: "00000000-0000-0000-0000-0000000000ff").uuidString
                == "00000000-0000-0000-0000-0000000000FF")
        #expect(throws: PostgresError.self) { try UUID(postgresText: "00000000-0000-0000-0000-0000000000fg") }
        #expect(throws: PostgresError.self) { try UUID(postgresText: "00000000+0000-0000-0000-0000000000ff") }
        #expect(throws: PostgresError.self) { try UUID(postgresText: "") }
    }

    @Test("bytea's hex form decodes, and malformed text is an error")
    func bytea() throws {
        #expect(try [UInt8](postgresText: "\\x00ff10") == [0, 255, 16])
        #expect(try [UInt8](postgresText: "\\x") == [])
        #expect(throws: PostgresError.self) { try [UInt8](postgresText: "\\x0") }
        #expect(throws: PostgresError.self) { try [UInt8](postgresText: "00ff") }
    }

    @Test("decoding reports the column and the value it could not read")
    func decodingErrors() {
        let row = PostgresRow(columns: ["n", "missing"], cells: ["abc", nil])
        #expect(throws: PostgresError.self) { try row.decode("n", as: Int.self) }
        #expect(throws: PostgresError.self) { try row.decode("missing", as: String.self) }
        #expect((try? row.decode("missing", as: String?.self)) == .some(nil))
        #expect(throws: PostgresError.self) { try row.decode("nope", as: String.self) }
    }

    @Test("URLs are checked by libpq's own parser")
    func urls() throws {
        _ = try PostgresConfiguration(url: "postgres://depot@127.0.0.1:5432/depot")
        _ = try PostgresConfiguration(url: "postgresql://u:p@host/db?sslmode=disable")
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "mysql://x") }
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "postgres://h/db?nonsense_option=1") }
    }
}

@Test func appendingRenumbersParameters() {
    var query: PostgresQuery = "UPDATE t SET a = \(1), "
    query.append("b = \("x"), c = \(2)")
    query.append(" WHERE id = \(3)")
    #expect(query.sql == "UPDATE t SET a = $1, b = $2, c = $3 WHERE id = $4")
    #expect(query.binds.count == 4)
    #expect(query.binds[1]?.bytes == Array("x".utf8))
}
