import AMQP
import ArgumentParser
import Foundation
import Postgres

/// Measures the foundation against its references, side by side in one run: the Swift AMQP
/// module against the same loop in C on librabbitmq, and the Swift PostgreSQL pool against
/// pgbench running the same SQL with the same number of clients. Rounds alternate which side
/// goes first, and the table shows medians, because this machine is noisy.
@main
struct DepotBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depot-bench", abstract: "Foundation benchmark: Swift modules vs librabbitmq in C and pgbench.")

    @Option(help: "Messages per broker measurement.") var messages = 50_000
    @Option(help: "Unconfirmed publishes in flight.") var window = 1_000
    @Option(help: "Consumer prefetch (basic.qos).") var prefetch: UInt16 = 100
    @Option(help: "Body size in bytes.") var bodyBytes = 400
    @Option(help: "Rounds; the table reports medians.") var rounds = 3
    @Option(help: "Insert transactions per client per database measurement.") var transactionsPerClient = 3_000
    @Option(help: "Client counts for the database measurement, comma-separated.") var databaseClients = "1,4,16"
    @Option(help: "Events in the generated log for the replay measurement.") var replayEvents = 1_000_000
    @Option(help: "Which parts to run: all, amqp, postgres, e2e, edge, replay, or load (not part of all).")
    var only = "all"
    @Option(help: "Orders in flight for the end-to-end measurement, comma-separated.") var endToEndConcurrency =
        "8,32,128"
    @Option(help: "Seconds at each offered rate of the load test.") var loadSeconds = 30
    @Option(help: "The load test's maximum rate in orders/s; without it a ramp of 10 s steps finds it.")
    var loadMax: Double?

    var amqpURL: String {
        ProcessInfo.processInfo.environment["DEPOT_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2F"
    }
    var databaseURL: String {
        ProcessInfo.processInfo.environment["DEPOT_DATABASE_URL"] ?? "postgres://depot@127.0.0.1:5432/depot"
    }

    struct Line {
        var name: String
        var reference: String
        var swift: [Double] = []
        var baseline: [Double] = []
        /// A second reference shown for context (pgbench without the pipelined BEGIN).
        var context: [Double] = []
    }

    func run() async throws {
        var lines: [Line] = []
        if only == "all" || only == "amqp" { lines += try await brokerLines() }
        if only == "all" || only == "postgres" { lines += try await databaseLines() }
        if !lines.isEmpty { printTable(lines) }
        if only == "all" || only == "e2e" { try await endToEnd() }
        if only == "all" || only == "edge" { try await edgeBenchmark() }
        if only == "all" || only == "replay" { try await replayBenchmark() }
        if only == "load" { try await loadBenchmark() }
    }

    // MARK: - Broker

    func brokerLines() async throws -> [Line] {
        let endpoint = try AMQPEndpoint.list(amqpURL)[0]
        let amqp = try await AMQPConnection.connect(AMQPConfiguration(endpoints: [endpoint]))
        var publish = Line(name: "persistent publish, confirms pipelined (msg/s)", reference: "C loop on librabbitmq")
        var consume = Line(name: "consume + ack each (msg/s)", reference: "C loop on librabbitmq")
        for round in 0..<rounds {
            let queue = "bench.\(UUID().uuidString.prefix(8).lowercased())"
            try await amqp.declareQueue(queue, durable: true)
            let swiftFirst = round % 2 == 1
            for side in swiftFirst ? ["swift", "c"] : ["c", "swift"] {
                try await amqp.purgeQueue(queue)
                if side == "swift" {
                    publish.swift.append(try await swiftPublish(amqp, queue: queue))
                    consume.swift.append(try await swiftConsume(amqp, queue: queue))
                } else {
                    publish.baseline.append(try reference("publish", endpoint, queue, window))
                    consume.baseline.append(try reference("consume", endpoint, queue, Int(prefetch)))
                }
            }
            try await amqp.deleteQueue(queue)
            log(
                "round \(round + 1)/\(rounds): publish swift \(Int(publish.swift.last!)) c \(Int(publish.baseline.last!)); consume swift \(Int(consume.swift.last!)) c \(Int(consume.baseline.last!))"
            )
        }
        await amqp.close()
        return [publish, consume]
    }

    func swiftPublish(_ amqp: AMQPConnection, queue: String) async throws -> Double {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: bodyBytes)
        let lanes = min(window, messages)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    for i in stride(from: lane, to: messages, by: lanes) {
                        let message = OutgoingMessage(body: body, properties: .persistentJSON(messageId: "s-\(i)"))
                        try await amqp.publish(message, exchange: "", routingKey: queue)
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(messages) / seconds(since: started)
    }

    func swiftConsume(_ amqp: AMQPConnection, queue: String) async throws -> Double {
        let consumer = try await amqp.consume(queue: queue, prefetch: prefetch)
        let started = ContinuousClock.now
        var received = 0
        for try await delivery in consumer {
            delivery.ack()
            received += 1
            if received == messages { break }
        }
        let rate = Double(messages) / seconds(since: started)
        await consumer.cancel()
        return rate
    }

    /// Runs the C reference (built beside this binary) and returns its rate.
    func reference(_ mode: String, _ endpoint: AMQPEndpoint, _ queue: String, _ windowOrPrefetch: Int) throws -> Double
    {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "amqp-c-reference")
        let output = try runProcess(
            binary.path,
            [mode, endpoint.host, "\(endpoint.port)", queue, "\(messages)", "\(windowOrPrefetch)", "\(bodyBytes)"])
        let parts = output.split(separator: " ").compactMap {
            Double($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard parts.count == 2, parts[1] > 0 else {
            throw ValidationError("unexpected output from \(binary.path): \(output)")
        }
        return parts[0] / parts[1]
    }

    // MARK: - Database

    func databaseLines() async throws -> [Line] {
        try await prepareInsertTable()
        // The pool sends BEGIN in one pipelined round trip with the first statement, so the
        // reference does the same; the plain three-round-trip script is shown for context.
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bench-insert-pipelined.sql")
        try """
        \\set n random(1, 1000000)
        \\startpipeline
        BEGIN;
        INSERT INTO bench.inserts (n, payload) VALUES (:n, 'order-payload-0123456789');
        \\endpipeline
        COMMIT;
        """.write(to: script, atomically: true, encoding: .utf8)
        let plainScript = try writePlainInsertScript()

        var lines: [Line] = []
        for clients in databaseClients.split(separator: ",").compactMap({ Int($0) }) {
            var line = Line(
                name: "insert transaction, \(clients) client\(clients == 1 ? "" : "s") (tx/s)",
                reference: "pgbench -M prepared, same pipelined BEGIN")
            let pool = PostgresPool(
                configuration: try PostgresConfiguration(
                    url: databaseURL,
                    options: {
                        var options = PostgresConfiguration.Options()
                        options.maxConnections = clients
                        return options
                    }()))
            for round in 0..<rounds {
                for side in round % 2 == 1 ? ["swift", "pgbench"] : ["pgbench", "swift"] {
                    if side == "swift" {
                        line.swift.append(try await swiftInserts(pool, clients: clients))
                    } else {
                        line.baseline.append(try pgbench(script: script.path, clients: clients))
                        line.context.append(try pgbench(script: plainScript.path, clients: clients))
                    }
                }
                log(
                    "\(clients) clients round \(round + 1)/\(rounds): swift \(Int(line.swift.last!)) pgbench \(Int(line.baseline.last!))"
                )
            }
            await pool.shutdown()
            lines.append(line)
        }
        return lines
    }

    /// pgbench's script for one plain BEGIN / INSERT / COMMIT transaction.
    func writePlainInsertScript() throws -> URL {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bench-insert-plain.sql")
        try """
        \\set n random(1, 1000000)
        BEGIN;
        INSERT INTO bench.inserts (n, payload) VALUES (:n, 'order-payload-0123456789');
        COMMIT;
        """.write(to: script, atomically: true, encoding: .utf8)
        return script
    }

    /// An empty `bench.inserts` table, the target of every database measurement.
    func prepareInsertTable() async throws {
        let setup = PostgresPool(configuration: try PostgresConfiguration(url: databaseURL))
        try await setup.withConnection { connection in
            try await connection.executeScript(
                unescaped: """
                    CREATE SCHEMA IF NOT EXISTS bench;
                    CREATE TABLE IF NOT EXISTS bench.inserts (id bigserial PRIMARY KEY, n bigint NOT NULL, payload text NOT NULL);
                    TRUNCATE bench.inserts;
                    """)
        }
        await setup.shutdown()
    }

    func swiftInserts(_ pool: PostgresPool, clients: Int) async throws -> Double {
        // Open every connection before the clock starts, as pgbench does.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask { try await pool.withConnection { _ = try await $0.query("SELECT pg_sleep(0.05)") } }
            }
            try await group.waitForAll()
        }
        let perClient = transactionsPerClient
        let started = ContinuousClock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var done = 0
                    while done < perClient {
                        let n = Int.random(in: 1...1_000_000)
                        try await pool.withTransaction { connection in
                            try await connection.execute(
                                "INSERT INTO bench.inserts (n, payload) VALUES (\(n), 'order-payload-0123456789')")
                        }
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / seconds(since: started)
    }

    func pgbench(script: String, clients: Int) throws -> Double {
        // -t, not -T: a child of this process inherits a signal mask that blocks pgbench's SIGALRM timer.
        let output = try runProcess(
            "/usr/bin/env",
            [
                "pgbench", "-n", "-M", "prepared", "-c", "\(clients)", "-j", "\(min(clients, 2))", "-t",
                "\(transactionsPerClient)", "-f", script, databaseURL,
            ])
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
            let tps = Double(line.dropFirst(6).prefix { $0 != " " })
        else { throw ValidationError("unexpected pgbench output: \(output)") }
        return tps
    }

    // MARK: - Output

    func printTable(_ lines: [Line]) {
        print("")
        print("| measurement | Swift | reference | reference rate | Swift / reference | for context |")
        print("|---|---:|---|---:|---:|---|")
        for line in lines {
            let swift = median(line.swift)
            let baseline = median(line.baseline)
            print(
                "| \(line.name) | \(Int(swift)) | \(line.reference) | \(Int(baseline)) | \(String(format: "%.0f%%", 100 * swift / baseline)) | \(line.context.isEmpty ? "" : "plain BEGIN/INSERT/COMMIT pgbench: \(Int(median(line.context)))") |"
            )
        }
        print("")
        print(
            "medians of \(rounds) rounds; \(messages) messages of \(bodyBytes) B per broker measurement, window \(window), prefetch \(prefetch); \(transactionsPerClient) insert transactions per client per database measurement"
        )
    }

    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    func log(_ text: String) {
        FileHandle.standardError.write(Data("[bench] \(text)\n".utf8))
    }

    func runProcess(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(path) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
