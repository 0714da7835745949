import AMQP
import ArgumentParser
import DepotApp
import Foundation
import Logging
import Operations
import Postgres

struct All: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every component in one process (development and the quick start).")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let settings = try connection.settings()
        try await ComponentRunner(settings: settings, logger: Logger(label: "depot.all")).run(Component.allCases)
    }
}

/// A subcommand that runs one component; several processes may run it at once (replicas).
protocol ComponentCommand: AsyncParsableCommand {
    static var component: Component { get }
    var connection: ConnectionOptions { get }
}

extension ComponentCommand {
    func run() async throws {
        let settings = try connection.settings()
        try await ComponentRunner(settings: settings, logger: Logger(label: "depot.\(Self.component.rawValue)")).run([Self.component])
    }
}

struct Edge: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "The HTTP edge: commands in, projections out.")
    static let issue = 4
}

struct Orders: ComponentCommand {
    static let configuration = CommandConfiguration(abstract: "The orders service and its saga (queue depot.orders).")
    static let component = Component.orders
    @OptionGroup var connection: ConnectionOptions
}

struct Inventory: ComponentCommand {
    static let configuration = CommandConfiguration(abstract: "The inventory service: products and stock (queue depot.inventory).")
    static let component = Component.inventory
    @OptionGroup var connection: ConnectionOptions
}

struct Payments: ComponentCommand {
    static let configuration = CommandConfiguration(abstract: "The payments service (queue depot.payments).")
    static let component = Component.payments
    @OptionGroup var connection: ConnectionOptions
}

struct Projector: ComponentCommand {
    static let configuration = CommandConfiguration(abstract: "The event log and the projections (queue depot.projector).")
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
        let pool = try await Connections.postgres(settings, maxConnections: 1, logger: logger)
        do {
            let migrator = Migrator(pool: pool)
            let applied = try await migrator.migrate { print($0) }
            let version = try await migrator.currentVersion()
            print(applied.isEmpty ? "schema is up to date (version \(version))" : "schema upgraded to version \(version)")
            await pool.shutdown()
        } catch {
            await pool.shutdown()
            FileHandle.standardError.write(Data("depot migrate: \(String(reflecting: error))\n".utf8))
            throw ExitCode(1)
        }
        guard topology else { return }
        let amqp = try await Connections.amqp(settings, logger: logger)
        do {
            let declared = try await ComponentRunner.declareTopology(settings: settings, on: amqp)
            print("topology declared: exchanges \(declared.exchanges.joined(separator: ", ")); queues \(declared.queues.joined(separator: ", "))")
            await amqp.close()
        } catch {
            await amqp.close()
            FileHandle.standardError.write(Data("depot migrate --topology: \(String(reflecting: error))\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Status: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "Queues, outbox backlog, projection lag, dead letters.")
    static let issue = 5
}

struct Replay: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "Rebuild projections or re-deliver stored events.")
    static let issue = 5
}

struct DLQ: NotYetBuilt {
    static let configuration = CommandConfiguration(commandName: "dlq", abstract: "List, show, redrive or purge dead letters.")
    static let issue = 5
}

struct Events: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "Read or follow the event log.")
    static let issue = 5
}

struct Token: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "Print a signed bearer token.")
    static let issue = 4
}

