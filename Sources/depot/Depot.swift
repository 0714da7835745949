import ArgumentParser
import DepotApp
import Foundation

/// The one executable: a subcommand per component and operator task (docs/interface.md §1 and §6).
@main
struct Depot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depot",
        abstract: "Event-driven order processing over RabbitMQ and PostgreSQL.",
        subcommands: [
            All.self, Edge.self, Orders.self, Inventory.self, Payments.self, Projector.self,
            Migrate.self, Status.self, Replay.self, DLQ.self, Events.self, Token.self,
        ])

    /// Exit statuses per docs/interface.md §6: 0 success, 1 failure, 2 bad usage or configuration.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("depot: \(error)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options every subcommand that talks to the broker or the database shares.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("amqp-url"), help: "Broker URL(s), comma-separated (DEPOT_AMQP_URL).")
    var amqpURL: String?

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (DEPOT_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("database-pool-size"), help: "PostgreSQL connections this process may hold (DEPOT_DATABASE_POOL_SIZE; default 8 per component).")
    var databasePoolSize: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, … (DEPOT_LOG_LEVEL).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "json or text (DEPOT_LOG_FORMAT).")
    var logFormat: String?

    var flags: [String: String] {
        var flags: [String: String] = [:]
        flags["DEPOT_AMQP_URL"] = amqpURL
        flags["DEPOT_DATABASE_URL"] = databaseURL
        flags["DEPOT_DATABASE_POOL_SIZE"] = databasePoolSize
        flags["DEPOT_LOG_LEVEL"] = logLevel
        flags["DEPOT_LOG_FORMAT"] = logFormat
        return flags
    }

    func settings() throws -> Settings {
        let settings = try Settings.resolve(flags: flags)
        bootstrapLogging(settings)
        return settings
    }
}

/// A subcommand whose component is not built yet says so and exits 1.
protocol NotYetBuilt: AsyncParsableCommand {
    static var issue: Int { get }
}

extension NotYetBuilt {
    func run() async throws {
        let name = Self._commandName
        FileHandle.standardError.write(Data("depot \(name): not built yet (issue #\(Self.issue))\n".utf8))
        throw ExitCode(1)
    }
}
