import ArgumentParser
import DepotApp
import DepotModel
import Foundation
import Logging
import Operations
import Postgres

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read or follow the event log: one line per event, or --json for tools.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "One order's events (its id).") var order: String?
    @Option(help: "Event types, e.g. order.* or payment.settled.") var type: String?
    @Option(help: "Start after this log position.") var after: Int64 = 0
    @Option(help: "At most this many events (without --follow).") var limit = 1_000
    @Flag(help: "Keep printing events as they are appended.") var follow = false
    @Flag(help: "JSON: one document (with --follow, one event per line).") var json = false

    func run() async throws {
        let settings = try connection.settings()
        try await Connections.withPostgres(
            settings, maxConnections: 1, applicationName: "depot-events", logger: Logger(label: "depot.events")
        ) { pool in
            let filter = EventRepublisher.Filter(typePattern: type, orderId: order?.lowercased())
            var position = after
            var printed = 0
            var items: [String] = []
            while true {
                let rows = try await pool.withConnection {
                    try await $0.query(
                        filter.query(
                            after: position, limit: follow ? 1_000 : min(1_000, limit - printed),
                            columns: "position, occurred_at, type, correlation_id, id, body"))
                }
                for row in rows {
                    let at: Int64 = try row.decode(0)
                    position = at
                    let body: String = try row.decode(5)
                    let document = #"{"position":\#(at),"# + body.dropFirst()
                    if json && follow {
                        print(document)
                    } else if json {
                        items.append(document)
                    } else {
                        let time = RFC3339.string(try row.decode(1, as: Date.self))
                        let type: String = try row.decode(2)
                        print(
                            "\(at)\t\(time)\t\(type.padding(toLength: 26, withPad: " ", startingAt: 0))\t\(try row.decode(3, as: String.self))\t\(try row.decode(4, as: UUID.self).canonicalText)"
                        )
                    }
                    printed += 1
                }
                fflush(nil)
                if !follow {
                    if rows.isEmpty || printed >= limit { break }
                    continue
                }
                // One indexed query a quarter second for one operator's terminal.
                if rows.isEmpty { try await Task.sleep(for: .milliseconds(250)) }
            }
            if json { print(#"{"items":["# + items.joined(separator: ",") + "]}") }
        }
    }
}
