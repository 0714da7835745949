/// One schema change, applied once, in version order.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
}

/// Every migration Depot knows, oldest first. Never edit one that has shipped: add a new one.
public enum Migrations {
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "service schemas",
            sql: """
                -- One schema per service: each service touches only its own.
                CREATE SCHEMA IF NOT EXISTS orders;
                CREATE SCHEMA IF NOT EXISTS inventory;
                CREATE SCHEMA IF NOT EXISTS payments;
                CREATE SCHEMA IF NOT EXISTS edge;
                CREATE SCHEMA IF NOT EXISTS eventlog;
                CREATE SCHEMA IF NOT EXISTS projections;
                """),
    ]
}
