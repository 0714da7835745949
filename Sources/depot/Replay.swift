import AMQP
import ArgumentParser
import DepotApp
import DepotModel
import Foundation
import Logging
import Operations
import Postgres

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild projections from the event log, or re-deliver stored events to one queue.",
        subcommands: [ReplayProjections.self, ReplayPublish.self])
}

struct ReplayProjections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Rebuild projections aside while the system runs, then switch atomically.",
        discussion: """
            Exit status: 0 done (or, with --dry-run, no differences); 1 failure or, with --dry-run, differences found.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Rebuild only this projection: orders or products (default: all).") var projection: [String] = []
    @Option(help: "Rebuild only the rows that events from this log position on touched (each from its whole history).")
    var fromPosition: Int64?
    @Flag(help: "Rebuild aside and print what would change; change nothing.") var dryRun = false

    func run() async throws {
        let settings = try connection.settings()
        try await Connections.withPostgres(
            settings, maxConnections: 2, applicationName: "depot-replay", logger: Logger(label: "depot.replay")
        ) { pool in
            let rebuild: ProjectionRebuild
            if let fromPosition, fromPosition < 1 { throw ValidationError("--from-position must be 1 or more") }
            do {
                rebuild = try ProjectionRebuild(pool: pool, projections: projection, fromPosition: fromPosition)
            } catch let error as PostgresError {
                throw ValidationError(error.message)
            }
            let reporter = ProgressReporter(label: dryRun ? "rebuilding aside (dry run)" : "rebuilding")
            do {
                if dryRun {
                    let differences = try await rebuild.dryRun { reporter.report($0) }
                    reporter.finish()
                    for difference in differences {
                        print(
                            "\(difference.table): \(difference.added) added, \(difference.removed) removed, \(difference.different) different"
                        )
                        for sample in difference.samples {
                            print("  " + sample.replacingOccurrences(of: "\n", with: "\n  "))
                        }
                    }
                    let total = differences.reduce(0) { $0 + $1.added + $1.removed + $1.different }
                    print(
                        total == 0
                            ? "no differences: the live projections equal a rebuild from the log"
                            : "\(total) rows differ; run without --dry-run to replace them")
                    if total > 0 { throw ExitCode(1) }
                } else {
                    let position = try await rebuild.run { reporter.report($0) }
                    reporter.finish()
                    print(
                        "rebuilt \(rebuild.projectionNames.joined(separator: ", ")) up to log position \(position) and switched over"
                    )
                }
            } catch let error as ExitCode {
                throw error
            } catch {
                reporter.finish()
                FileHandle.standardError.write(
                    Data(
                        "depot replay projections: \(String(reflecting: error))\nnothing was switched; the live projections are unchanged. Fix the cause and run it again.\n"
                            .utf8))
                throw ExitCode(1)
            }
        }
    }
}

/// A progress bar on a terminal, plain lines (at most one a second) otherwise.
final class ProgressReporter: @unchecked Sendable {
    let label: String
    let isTerminal = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var lastLine = ContinuousClock.now - .seconds(10)
    private var last: ProjectionRebuild.Progress?

    init(label: String) { self.label = label }

    func report(_ progress: ProjectionRebuild.Progress) {
        lock.withLock {
            last = progress
            let now = ContinuousClock.now
            guard isTerminal || now - lastLine >= .seconds(1) || progress.done == progress.total else { return }
            lastLine = now
            let fraction = progress.total > 0 ? Double(progress.done) / Double(progress.total) : 1
            let eta = progress.remaining.map { " ETA \(Int($0.components.seconds))s" } ?? ""
            let numbers = "\(progress.done)/\(progress.total) events, \(Int(progress.eventsPerSecond)) events/s\(eta)"
            if isTerminal {
                let width = 30
                let filled = Int(fraction * Double(width))
                let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                FileHandle.standardError.write(
                    Data("\r\(label) [\(bar)] \(Int(fraction * 100))% \(numbers)\u{1B}[K".utf8))
            } else {
                FileHandle.standardError.write(Data("\(label): \(Int(fraction * 100))% \(numbers)\n".utf8))
            }
        }
    }

    func finish() {
        lock.withLock {
            if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
            if let last {
                FileHandle.standardError.write(
                    Data("\(label): \(last.done) events at \(Int(last.eventsPerSecond)) events/s\n".utf8))
            }
        }
    }
}

struct ReplayPublish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Re-deliver stored events, in log order, to ONE queue (never to everyone on depot.events).",
        discussion: """
            Each event keeps its original message id, so a consumer with an inbox (every Depot service) \
            skips the ones it has handled: repeating a replay is harmless.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The queue to deliver to (it must exist).") var queue: String
    @Option(help: "Event types, e.g. order.* or stock.reserved.") var type: String?
    @Option(help: "First log position.") var fromPosition: Int64?
    @Option(help: "Last log position.") var toPosition: Int64?
    @Option(help: "Events that occurred at or after this RFC 3339 time.") var since: String?
    @Option(help: "Events that occurred before this RFC 3339 time.") var until: String?
    @Option(help: "One order's events (its id).") var order: String?
    @Flag(help: "Count the events that would be sent; send nothing.") var dryRun = false

    func run() async throws {
        let settings = try connection.settings()
        func time(_ text: String?, _ name: String) throws -> Date? {
            guard let text else { return nil }
            if let date = RFC3339.anyDate(text) { return date }
            throw ValidationError("--\(name) must be an RFC 3339 time such as 2026-11-24T10:00:00Z")
        }
        let filter = EventRepublisher.Filter(
            typePattern: type, fromPosition: fromPosition, toPosition: toPosition, since: try time(since, "since"),
            until: try time(until, "until"),
            orderId: order?.lowercased())
        try await Connections.withPostgres(
            settings, maxConnections: 1, applicationName: "depot-replay", logger: Logger(label: "depot.replay")
        ) { pool in
            let republisher = EventRepublisher(pool: pool)
            let matching = try await republisher.count(filter)
            if dryRun {
                print("\(matching) events would be sent to \(queue)")
                return
            }
            try await Connections.withAMQP(settings, logger: Logger(label: "depot.replay")) { amqp in
                guard (try? await amqp.inspectQueue(queue)) != nil else {
                    FileHandle.standardError.write(
                        Data(
                            "depot replay publish: queue \(queue) does not exist; declare and bind it first (or check the name with depot status)\n"
                                .utf8))
                    throw ExitCode(1)
                }
                do {
                    let sent = try await republisher.publish(filter, to: queue, amqp: amqp) { sent in
                        FileHandle.standardError.write(Data("sent \(sent)/\(matching)\n".utf8))
                    }
                    print(
                        "sent \(sent) events to \(queue), each confirmed by the broker; consumers with an inbox skip the ones they have handled"
                    )
                } catch {
                    FileHandle.standardError.write(
                        Data(
                            "depot replay publish: \(String(reflecting: error))\nevents sent before the failure stay sent; running the same command again is safe.\n"
                                .utf8))
                    throw ExitCode(1)
                }
            }
        }
    }
}
