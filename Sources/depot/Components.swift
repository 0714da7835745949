import AMQP
import ArgumentParser
import DepotApp
import Edge
import Foundation
import Logging
import Operations
import Postgres

struct All: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every component in one process (development and the quick start).")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let (settings, metrics) = try connection.processSettings()
        // Development convenience (docs/interface.md §2): without DEPOT_JWT_SECRET, make one up and say so.
        let secret =
            settings.jwtSecret ?? (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let generated = settings.jwtSecret == nil
        let edge = ProcessPlan.EdgePart(jwtSecret: secret) { url in
            let token =
                (try? await TokenAuthority(secret: secret).issue(
                    subject: "admin", role: .admin, ttl: .seconds(24 * 3600))) ?? "-"
            var lines = "edge:        \(url)  (API reference: \(url)/docs)\n"
            if generated {
                lines += "jwt secret:  \(secret)  (generated; set DEPOT_JWT_SECRET to keep tokens across restarts)\n"
            }
            lines += "admin token: \(token)\n"
            FileHandle.standardOutput.write(Data(lines.utf8))
        }
        try await ProcessPlan(components: Component.allCases, edge: edge).run(
            settings: settings, logger: Logger(label: "depot.all"), metrics: metrics)
    }
}

/// A subcommand that runs one component; several processes may run it at once (replicas).
protocol ComponentCommand: AsyncParsableCommand {
    static var component: Component { get }
    var connection: ConnectionOptions { get }
}

extension ComponentCommand {
    func run() async throws {
        let (settings, metrics) = try connection.processSettings()
        try await ProcessPlan(components: [Self.component]).run(
            settings: settings, logger: Logger(label: "depot.\(Self.component.rawValue)"), metrics: metrics)
    }
}

struct Edge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The HTTP edge: commands in, projections out (DEPOT_HTTP_HOST/PORT).")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let (settings, metrics) = try connection.processSettings()
        guard let secret = settings.jwtSecret else {
            throw ConfigurationError(
                setting: "DEPOT_JWT_SECRET", problem: "the edge needs an HS256 key to verify bearer tokens")
        }
        let edge = ProcessPlan.EdgePart(jwtSecret: secret) { url in
            Logger(label: "depot.edge").info("edge listening", metadata: ["url": "\(url)"])
        }
        try await ProcessPlan(components: [], edge: edge).run(
            settings: settings, logger: Logger(label: "depot.edge"), metrics: metrics)
    }
}

struct Orders: ComponentCommand {
    static let configuration = CommandConfiguration(abstract: "The orders service and its saga (queue depot.orders).")
    static let component = Component.orders
    @OptionGroup var connection: ConnectionOptions
}

struct Inventory: ComponentCommand {
    static let configuration = CommandConfiguration(
        abstract: "The inventory service: products and stock (queue depot.inventory).")
    static let component = Component.inventory
    @OptionGroup var connection: ConnectionOptions
}

struct Payments: ComponentCommand {
    static let configuration = CommandConfiguration(abstract: "The payments service (queue depot.payments).")
    static let component = Component.payments
    @OptionGroup var connection: ConnectionOptions
}

struct Projector: ComponentCommand {
    static let configuration = CommandConfiguration(
        abstract: "The event log and the projections (queue depot.projector).")
    static let component = Component.projector
    @OptionGroup var connection: ConnectionOptions
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or upgrade the database schema; safe to run again and concurrently.")

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Also declare every exchange and queue on the broker (each component does so itself at start).")
    var topology = false

    func run() async throws {
        let settings = try connection.settings()
        let logger = Logger(label: "depot.migrate")
        let pool = try await Connections.postgres(
            settings, maxConnections: 1, applicationName: "depot-migrate", logger: logger)
        do {
            let migrator = Migrator(pool: pool)
            let applied = try await migrator.migrate { print($0) }
            let version = try await migrator.currentVersion()
            print(
                applied.isEmpty ? "schema is up to date (version \(version))" : "schema upgraded to version \(version)")
            await pool.shutdown()
        } catch {
            await pool.shutdown()
            FileHandle.standardError.write(Data("depot migrate: \(String(reflecting: error))\n".utf8))
            throw ExitCode(1)
        }
        guard topology else { return }
        let amqp = try await Connections.amqp(settings, logger: logger)
        do {
            let declared = try await Component.declareTopology(settings: settings, on: amqp)
            print(
                "topology declared: exchanges \(declared.exchanges.joined(separator: ", ")); queues \(declared.queues.joined(separator: ", "))"
            )
            await amqp.close()
        } catch {
            await amqp.close()
            FileHandle.standardError.write(Data("depot migrate --topology: \(String(reflecting: error))\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a bearer token signed with DEPOT_JWT_SECRET.")

    @Option(help: "The caller's id (the token's sub claim).") var sub: String
    @Option(help: "customer or admin.") var role: String
    @Option(help: "How long the token is valid, e.g. 30m, 24h.") var ttl = "24h"
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let settings = try connection.settings()
        guard let secret = settings.jwtSecret else {
            throw ConfigurationError(
                setting: "DEPOT_JWT_SECRET", problem: "needed to sign tokens; use the edge's secret")
        }
        guard let role = Caller.Role(rawValue: role) else { throw ValidationError("--role must be customer or admin") }
        guard !sub.isEmpty else { throw ValidationError("--sub must not be empty") }
        let duration: Duration
        do { duration = try parseDuration(ttl) } catch { throw ValidationError("--ttl: \(error.problem)") }
        print(try await TokenAuthority(secret: secret).issue(subject: sub, role: role, ttl: duration))
    }
}
