import DepotApp
import DepotModel
import Foundation
import Postgres
import Synchronization
import Testing

/// The edge and the services when PostgreSQL is away or refuses connections, and the connection
/// budget on a stock server. Run alone (`--filter Disruption`): the first stops the shared database.
@Suite("Database disruption", .serialized)
struct DatabaseDisruptionTests {
    static let orderBody = #"{"lines":[{"sku":"db-1","quantity":1}],"payment":{"token":"tok_ok"}}"#

    /// Orders, product reads and order listings from `clients` callers until `traffic.stop()`.
    static func load(_ edges: [EdgeClient], traffic: OrderTraffic, clients: Int = 6) async throws {
        let customer = try await EdgeClient.token()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    var round = 0
                    while !traffic.isStopped {
                        let edge = edges[(client + round) % edges.count]
                        await traffic.order(edge, token: customer, key: "load-\(client)-\(round)")
                        if let reply = try? await edge.send("GET", "/v1/products/db-1") {
                            traffic.record(reply, key: nil)
                        }
                        if let reply = try? await edge.send("GET", "/v1/orders?limit=5", token: customer) {
                            traffic.record(reply, key: nil)
                        }
                        round += 1
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func databaseStoppedUnderLoadGives503NeverA500AndRecoversWithoutARestart() async throws {
        let edge = try await EdgeClient.start()
        let admin = try await EdgeClient.admin()
        let created = try await edge.send(
            "POST", "/v1/products", token: admin, json: #"{"sku":"db-1","name":"D","price_cents":5,"stock":1000000}"#,
            headers: ["Prefer": "wait=5"])
        #expect(created.status == 201)

        let answers = OrderTraffic(body: Self.orderBody)
        let load = Task { try await Self.load([edge], traffic: answers) }
        try await Task.sleep(for: .seconds(2))
        try TestEnvironment.dev("stop-postgres")
        var sawNotReady = false
        do {
            sawNotReady = try await eventually(timeout: .seconds(15)) {
                try await edge.send("GET", "/readyz").status == 503
            }
            try await Task.sleep(for: .seconds(5))
        } catch {
            try? TestEnvironment.dev("start-postgres")
            throw error
        }
        try TestEnvironment.dev("start-postgres")
        let back = try await eventually(timeout: .seconds(60)) { try await edge.send("GET", "/readyz").status == 200 }
        try await Task.sleep(for: .seconds(2))
        answers.stop()
        try await load.value
        print("answers during a database stop/start under load: \(answers.summary)")

        #expect(sawNotReady, "/readyz never said 503 while the database was stopped")
        #expect(back, "the edge did not become ready again; logs in \(edge.depot.logDirectory.path)")
        #expect(answers.serverErrors == 0, "5xx other than 503: \(answers.summary)")
        #expect((answers.state.withLock { $0.byStatus[503] } ?? 0) > 0, "no request met the outage: \(answers.summary)")
        #expect(answers.state.withLock { $0.badUnavailable } == [])
        // Nothing half-done: every refused order, sent again with its key, is accepted once.
        #expect(try await answers.resendPending(edge, token: try await EdgeClient.token(), timeout: .seconds(60)))
        let client = try await SagaClient(edge.depot)
        let accepted = answers.acceptedOrders
        #expect(try await client.waitUntilAllFinal(accepted, timeout: .seconds(90)))
        #expect(try await client.settledViolations(expectedOrders: accepted.count) == [])
        await client.close()
        await edge.depot.tearDown()
    }

    /// A stock server (max_connections = 100) runs two replicas of every worker and two edges
    /// under load without a refused connection; once something else takes every slot, a new
    /// process stops at start naming DEPOT_DATABASE_POOL_SIZE and max_connections, and an edge
    /// whose connections are gone answers 503 (never 500) until slots free up, then recovers.
    @Test func connectionBudgetFitsAStockServerAndRefusalsAreOutages() async throws {
        let port = TestEnvironment.freePort()
        let server = try TestEnvironment.dev("scratch-postgres", "start", "\(port)", "100").trimmingCharacters(
            in: .whitespacesAndNewlines)
        defer { _ = try? TestEnvironment.dev("scratch-postgres", "stop", "\(port)") }
        let depot = try await IsolatedDepot.make(
            ["DEPOT_JWT_SECRET": EdgeClient.secret, "DEPOT_RATE_LIMIT": "0"], databaseServer: server)
        let migrated = try await depot.run("migrate")
        #expect(migrated.status == 0, "\(migrated.output)")
        for component in ["orders", "inventory", "payments", "projector"] {
            for replica in 1...2 { try depot.start([component], label: "\(component)-\(replica)") }
        }
        var edges: [EdgeClient] = []
        for replica in 1...2 {
            let httpPort = TestEnvironment.freePort()
            try depot.start(["edge"], label: "edge-\(replica)", settings: ["DEPOT_HTTP_PORT": "\(httpPort)"])
            edges.append(EdgeClient(base: URL(string: "http://127.0.0.1:\(httpPort)")!, depot: depot))
        }
        for edge in edges {
            let up = try await eventually(timeout: .seconds(30)) {
                (try? await edge.send("GET", "/readyz").status) == 200
            }
            #expect(up, "an edge did not come up; logs in \(depot.logDirectory.path)")
        }
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let admin = try await EdgeClient.admin()
        #expect(
            try await edges[0].send(
                "POST", "/v1/products", token: admin,
                json: #"{"sku":"db-1","name":"D","price_cents":5,"stock":1000000}"#,
                headers: ["Prefer": "wait=5"]
            ).status == 201)

        // Load through both edges; count what every process holds, by application_name.
        let answers = OrderTraffic(body: Self.orderBody)
        let running = edges
        let load = Task { try await Self.load(running, traffic: answers, clients: 8) }
        try await Task.sleep(for: .seconds(8))
        let observer = try await TestEnvironment.postgres(maxConnections: 1, url: server)
        let held = try await observer.withConnection { connection in
            try await connection.query(
                "SELECT application_name, count(*) FROM pg_stat_activity WHERE application_name LIKE 'depot-%' GROUP BY 1 ORDER BY 1"
            ).map { "\(try $0.decode(0, as: String.self))=\(try $0.decode(1, as: Int64.self))" }
        }
        answers.stop()
        try await load.value
        print(
            "connections under load on a max_connections = 100 server, 2 replicas of each: \(held); answers: \(answers.summary)"
        )
        #expect(answers.serverErrors == 0 && answers.state.withLock { $0.byStatus[503] } == nil, "\(answers.summary)")
        let serverLog = try TestEnvironment.dev("scratch-postgres", "log", "\(port)")
        #expect(!serverLog.contains("too many clients"), "the server refused connections under the default budget")

        // Take every slot that is left, the way another client of a shared server would.
        let hog = try PostgresPool(configuration: Connections.hogConfiguration(server))
        var holders: [Task<Void, Never>] = []
        let gate = AsyncGate()
        // Opens connections one at a time until the server refuses one.
        func fillRemainingSlots() async {
            while true {
                let opened = AsyncGate.Flag()
                let failed = AsyncGate.Flag()
                let holder = Task {
                    do {
                        try await hog.withConnection { _ in
                            opened.mark()
                            await gate.wait()
                        }
                    } catch {
                        failed.mark()
                    }
                }
                while !opened.isMarked && !failed.isMarked { try? await Task.sleep(for: .milliseconds(10)) }
                if failed.isMarked { return }
                holders.append(holder)
            }
        }
        await fillRemainingSlots()
        #expect(holders.count > 0)

        // A process that starts now cannot get its connections: exit 2, naming the setting and the server's limit.
        let refused = try await depot.run("orders")
        #expect(refused.status == 2, "\(refused.output.suffix(500))")
        #expect(
            refused.output.contains("DEPOT_DATABASE_POOL_SIZE") && refused.output.contains("max_connections"),
            "\(refused.output.suffix(500))")

        // An edge whose connections are cut must open new ones, and cannot: 503 with Retry-After, never 500.
        _ = try await observer.withConnection { connection in
            try await connection.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'depot-edge'")
        }
        await observer.shutdown()
        await fillRemainingSlots()
        let customer = try await EdgeClient.token()
        var refusedAnswers: [Int] = []
        for round in 0..<5 {
            let reply = try await edges[0].send(
                "POST", "/v1/orders", token: customer, json: Self.orderBody,
                headers: ["Idempotency-Key": "refused-\(round)"])
            answers.record(reply, key: "refused-\(round)")
            refusedAnswers.append(reply.status)
        }
        #expect(
            refusedAnswers.contains(503) && refusedAnswers.allSatisfy { $0 == 503 || $0 == 202 }, "\(refusedAnswers)")
        #expect(answers.serverErrors == 0, "\(answers.summary)")

        // Slots free again: the same edge accepts without a restart, and nothing was lost.
        await gate.open()
        for holder in holders { await holder.value }
        await hog.shutdown()
        #expect(try await answers.resendPending(edges[0], token: try await EdgeClient.token(), timeout: .seconds(60)))
        let client = try await SagaClient(depot)
        let accepted = answers.acceptedOrders
        #expect(try await client.waitUntilAllFinal(accepted, timeout: .seconds(90)))
        #expect(try await client.settledViolations(expectedOrders: accepted.count) == [])
        await client.close()
        await depot.tearDown()
    }
}

/// Holds tasks until opened.
actor AsyncGate {
    private var isOpen = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiting.append($0) }
    }
    func open() {
        isOpen = true
        for continuation in waiting { continuation.resume() }
        waiting.removeAll()
    }

    final class Flag: Sendable {
        private let flag = Mutex(false)
        func mark() { flag.withLock { $0 = true } }
        var isMarked: Bool { flag.withLock { $0 } }
    }
}

extension Connections {
    /// A pool that opens as many connections as the server allows (for taking every slot).
    static func hogConfiguration(_ url: String) throws -> PostgresConfiguration {
        var options = PostgresConfiguration.Options()
        options.maxConnections = 200
        options.acquireTimeout = .seconds(2)
        options.applicationName = "test-hog"
        return try PostgresConfiguration(url: url, options: options)
    }
}
