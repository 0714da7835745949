import AMQP
import ArgumentParser
import DepotApp
import Foundation
import Logging
import Operations
import Postgres

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "One screen: queues (depth, consumers, rates), outbox backlogs, projection lag, dead letters — each with a verdict.",
        discussion:
            "Message rates come from the RabbitMQ management API when DEPOT_MANAGEMENT_URL is set (e.g. http://guest:guest@127.0.0.1:15672). Exit status 1 when something is failing."
    )

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "One JSON document.") var json = false
    @Flag(help: "Refresh every 2 seconds until interrupted.") var watch = false

    func run() async throws {
        let settings = try connection.settings()
        let logger = Logger(label: "depot.status")
        try await Connections.withPostgres(settings, applicationName: "depot-status", logger: logger) { pool in
            try await Connections.withAMQP(settings, logger: logger) { amqp in
                let vhost = (try? AMQPEndpoint.list(settings.amqpURL).first?.vhost) ?? "/"
                let status = SystemStatus(amqp: amqp, pool: pool, managementURL: settings.managementURL, vhost: vhost)
                repeat {
                    let report = try await status.report()
                    if json {
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.sortedKeys]
                        encoder.keyEncodingStrategy = .convertToSnakeCase
                        print(String(decoding: try encoder.encode(report), as: UTF8.self))
                    } else {
                        if watch { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                        render(report)
                    }
                    fflush(nil)
                    if watch {
                        try await Task.sleep(for: .seconds(2))
                    } else if report.health == .failing {
                        throw ExitCode(1)
                    }
                } while watch
            }
        }
    }

    func render(_ report: SystemStatus.Report) {
        func mark(_ health: SystemStatus.Health) -> String {
            health == .ok ? "ok  " : health == .warning ? "WARN" : "FAIL"
        }
        func pad(_ text: String, _ width: Int) -> String {
            text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0)
        }
        func rate(_ value: Double?) -> String { value.map { String(format: "%.1f/s", $0) } ?? "-" }
        print("depot status — overall: \(report.health.rawValue)\n")
        print(pad("QUEUE", 24) + pad("DEPTH", 8) + pad("CONSUMERS", 11) + pad("IN", 10) + pad("OUT", 10) + "VERDICT")
        for queue in report.queues {
            print(
                pad(queue.name, 24) + pad("\(queue.depth)", 8) + pad("\(queue.consumers)", 11)
                    + pad(rate(queue.publishRate), 10) + pad(rate(queue.deliverRate), 10) + mark(queue.health) + " "
                    + queue.note)
        }
        print("\n" + pad("OUTBOX", 24) + pad("BACKLOG", 10) + pad("OLDEST", 12) + "VERDICT")
        for outbox in report.outboxes {
            print(
                pad(outbox.service, 24) + pad("\(outbox.backlog)", 10)
                    + pad(outbox.oldestSeconds.map { String(format: "%.1fs", $0) } ?? "-", 12) + mark(outbox.health)
                    + " " + outbox.note)
        }
        print("\n" + pad("PROJECTION", 24) + pad("POSITION", 12) + pad("LOG HEAD", 12) + pad("LAG", 10) + "VERDICT")
        for projection in report.projections {
            print(
                pad(projection.name, 24) + pad("\(projection.position)", 12) + pad("\(projection.head)", 12)
                    + pad("\(projection.lag)", 10) + mark(projection.health) + " " + projection.note)
        }
        let connections = report.connections
        print("\n" + pad("DATABASE CONNECTIONS", 24) + pad("OPEN", 8) + pad("ACTIVE", 8) + "VERDICT")
        for use in connections.depot {
            print(pad(use.applicationName, 24) + pad("\(use.open)", 8) + pad("\(use.active)", 8))
        }
        print(
            pad("server (all clients)", 24) + pad("\(connections.inUse)/\(connections.maxConnections)", 16)
                + mark(connections.health) + " " + connections.note)
    }
}
