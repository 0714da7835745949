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
        let logger = Logger(label: "depot.all")
        let pool = try await Connections.postgres(settings, logger: logger)
        let amqp = try await Connections.amqp(settings, logger: logger)
        try await Migrator(pool: pool).migrate { logger.info("\($0)") }
        logger.info(
            "depot all is up; the services, the edge and the projector arrive with issues #3-#5",
            metadata: ["amqp": "\(settings.amqpURL)", "components": "broker, database, migrations"])
        await waitForTerminationSignal()
        logger.info("stopping")
        await amqp.close()
        await pool.shutdown()
    }
}

struct Edge: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "The HTTP edge: commands in, projections out.")
    static let issue = 4
}

struct Orders: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "The orders service and its saga.")
    static let issue = 3
}

struct Inventory: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "The inventory service: products and stock.")
    static let issue = 3
}

struct Payments: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "The payments service.")
    static let issue = 3
}

struct Projector: NotYetBuilt {
    static let configuration = CommandConfiguration(abstract: "The event log and the projections.")
    static let issue = 3
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or upgrade the database schema; safe to run again and concurrently.")

    @OptionGroup var connection: ConnectionOptions

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

/// Returns on SIGINT or SIGTERM.
func waitForTerminationSignal() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = OnceFlag()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { if once.claim() { continuation.resume() } }
            source.resume()
            SignalSources.keep(source)
        }
    }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if done { return false }
        done = true
        return true
    }
}

enum SignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    static func keep(_ source: any DispatchSourceSignal) { sources.append(source) }
}
