import DepotModel
import Foundation
import Synchronization
import Testing

/// Depot on a real cluster (`scripts/dev cluster up`: 3 RabbitMQ nodes with quorum queues, a
/// PostgreSQL primary and streaming replica, 2 edges behind HAProxy, 2 of every worker), under
/// a steady stream of orders through the balancer. Run alone (`--filter Disruption`).
@Suite("Cluster disruption", .serialized)
struct ClusterDisruptionTests {
    /// The cluster, started once for the suite (ports of their own, so the single-node servers keep running).
    static let cluster: Result<Cluster, any Error> = Result { try Cluster.up() }

    struct Cluster: Sendable {
        /// DEPOT_CLUSTER_PORT_BASE: every port of the cluster derives from it (scripts/dev-cluster).
        let base: Int
        let environment: [String: String]
        let balancer: URL
        let edges: [URL]
        let depot: IsolatedDepot

        static func up(base: Int = 5700) throws -> Cluster {
            let settings = ["DEPOT_BINARY": IsolatedDepot.depotBinary.path, "DEPOT_CLUSTER_PORT_BASE": "\(base)"]
            _ = try TestEnvironment.dev(["cluster", "down", "--purge"], environment: settings)
            _ = try TestEnvironment.dev(["cluster", "up"], environment: settings)
            var environment: [String: String] = [:]
            for line in try TestEnvironment.dev(["cluster", "env"], environment: settings).split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { environment[parts[0]] = parts[1] }
            }
            let port = base + 2400
            return Cluster(
                base: base, environment: environment, balancer: URL(string: "http://127.0.0.1:\(port)")!,
                edges: [URL(string: "http://127.0.0.1:\(port + 1)")!, URL(string: "http://127.0.0.1:\(port + 2)")!],
                depot: IsolatedDepot.attach(name: "cluster-\(base)", environment: environment))
        }

        func client(_ url: URL) -> EdgeClient { EdgeClient(base: url, depot: depot) }

        @discardableResult
        func dev(_ arguments: String...) throws -> String {
            try TestEnvironment.dev(
                ["cluster"] + arguments,
                environment: ["DEPOT_BINARY": IsolatedDepot.depotBinary.path, "DEPOT_CLUSTER_PORT_BASE": "\(base)"])
        }
    }

    /// Orders of two lines through `edge` from a few callers, each key new, until `traffic.stop()`.
    static func stream(_ traffic: OrderTraffic, through edge: EdgeClient, token: String, clients: Int = 4) async {
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    var round = 0
                    while !traffic.isStopped {
                        await traffic.order(
                            edge, token: token, key: "stream-\(UUID().canonicalText.prefix(8))-\(client)-\(round)")
                        round += 1
                    }
                }
            }
        }
    }

    static func orderTraffic() -> OrderTraffic {
        OrderTraffic(
            body: #"{"lines":[{"sku":"cl-1","quantity":1},{"sku":"cl-2","quantity":1}],"payment":{"token":"tok_ok"}}"#)
    }

    /// Every accepted order final, effects once, stock conserved, projections equal to the services.
    func checkGuarantees(_ cluster: Cluster, baseline: Int, stream: OrderTraffic) async throws {
        let client = try await SagaClient(cluster.depot)
        let expected = baseline + stream.acceptedOrders.count
        let violations = try await client.settledViolations(expectedOrders: expected, timeout: .seconds(90))
        #expect(violations == [], "cluster logs: .data/cluster/log/")
        await client.close()
    }

    func ordersSoFar(_ cluster: Cluster) async throws -> Int {
        let client = try await SagaClient(cluster.depot)
        defer { Task { await client.close() } }
        return try await client.count("SELECT count(*) FROM orders.orders")
    }

    func prepare(_ cluster: Cluster) async throws -> String {
        let admin = try await EdgeClient.token(
            sub: "admin-1", role: "admin", secret: cluster.environment["DEPOT_JWT_SECRET"]!)
        let balancer = cluster.client(cluster.balancer)
        for sku in ["cl-1", "cl-2"] {
            let created = try await balancer.send(
                "POST", "/v1/products", token: admin,
                json: #"{"sku":"\#(sku)","name":"C","price_cents":10,"stock":1000000}"#,
                headers: ["Prefer": "wait=10"])
            #expect(created.status == 201 || created.status == 409, "\(created.status) \(created.text)")
        }
        return try await EdgeClient.token(sub: "cluster-customer", secret: cluster.environment["DEPOT_JWT_SECRET"]!)
    }

    @Test func stoppingTheQueueLeaderLosesAndDoublesNothing() async throws {
        let cluster = try Self.cluster.get()
        let token = try await prepare(cluster)
        let baseline = try await ordersSoFar(cluster)
        let balancer = cluster.client(cluster.balancer)
        let stream = Self.orderTraffic()
        let running = Task { await Self.stream(stream, through: balancer, token: token) }
        try await Task.sleep(for: .seconds(3))
        let leader = try cluster.dev("leader", "depot.orders").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let stoppedAt = ContinuousClock.now
        try cluster.dev("stop-node", leader)
        let before = stream.acceptedCount
        // Publishing and consuming move to the other nodes without restarting anything.
        let moved = try await eventually(timeout: .seconds(60)) {
            stream.acceptedCount > before + 10
        }
        print(
            "orders accepted again \(ContinuousClock.now - stoppedAt) after stopping RabbitMQ node \(leader), the leader of depot.orders"
        )
        try await Task.sleep(for: .seconds(3))
        try cluster.dev("start-node", leader)
        try await Task.sleep(for: .seconds(3))
        stream.stop()
        await running.value
        #expect(moved, "no order accepted after the leader stopped: \(stream.summary)")
        #expect(try await stream.resendPending(balancer, token: token), "\(stream.summary)")
        print("queue leader stopped and started under load: \(stream.summary)")
        #expect(stream.serverErrors == 0, "\(stream.summary)")
        try await checkGuarantees(cluster, baseline: baseline, stream: stream)
    }

    @Test func killingAnEdgeSendsTrafficToTheOtherAndAKeyKeepsItsOrder() async throws {
        let cluster = try Self.cluster.get()
        let token = try await prepare(cluster)
        let baseline = try await ordersSoFar(cluster)
        let balancer = cluster.client(cluster.balancer)
        let body = #"{"lines":[{"sku":"cl-1","quantity":1}],"payment":{"token":"tok_ok"}}"#
        let first = try await cluster.client(cluster.edges[0]).send(
            "POST", "/v1/orders", token: token, json: body, headers: ["Idempotency-Key": "kept"])
        #expect(first.status == 202)

        let stream = Self.orderTraffic()
        let running = Task { await Self.stream(stream, through: balancer, token: token) }
        try await Task.sleep(for: .seconds(2))
        try cluster.dev("kill-process", "edge-1")
        // The balancer notices within its check interval; requests keep being accepted by edge-2.
        let before = stream.acceptedCount
        let served = try await eventually(timeout: .seconds(20)) {
            stream.acceptedCount > before + 20
        }
        #expect(served, "\(stream.summary)")
        let again = try await balancer.send(
            "POST", "/v1/orders", token: token, json: body, headers: ["Idempotency-Key": "kept"])
        #expect(
            again.status == 202 && again.json["id"] as? String == first.json["id"] as? String,
            "\(again.status) \(again.text)")
        try cluster.dev("start-process", "edge-1")
        stream.stop()
        await running.value
        #expect(try await stream.resendPending(balancer, token: token), "\(stream.summary)")
        print("edge-1 SIGKILLed under load: \(stream.summary)")
        #expect(stream.serverErrors == 0, "\(stream.summary)")
        stream.state.withLock { $0.accepted["kept"] = first.json["id"] as? String }
        try await checkGuarantees(cluster, baseline: baseline, stream: stream)
        let back = try await eventually(timeout: .seconds(30)) {
            (try? await cluster.client(cluster.edges[0]).send("GET", "/readyz").status) == 200
        }
        #expect(back)
    }

    @Test func readsComeFromTheReplicaAndAWaitedWriteIsSeenThroughEveryEdge() async throws {
        let cluster = try Self.cluster.get()
        let token = try await prepare(cluster)
        let admin = try await EdgeClient.token(
            sub: "admin-1", role: "admin", secret: cluster.environment["DEPOT_JWT_SECRET"]!)
        let edges = cluster.edges.map(cluster.client)
        // Reads come from the replica: its replay position moves, the edges hold connections to it.
        let replicaReads = try await edges[1].send("GET", "/v1/products/cl-1")
        #expect(replicaReads.status == 200)

        try cluster.dev("replica-delay", "1500ms")
        defer { try? cluster.dev("replica-delay", "0") }
        for round in 0..<3 {
            // An order and a product change, each answered by one edge once visible …
            let placed = try await edges[round % 2].send(
                "POST", "/v1/orders", token: token,
                json: #"{"lines":[{"sku":"cl-2","quantity":1}],"payment":{"token":"tok_ok"}}"#,
                headers: ["Idempotency-Key": "ryw-\(round)-\(UUID().canonicalText.prefix(6))", "Prefer": "wait=10"])
            #expect(placed.status == 201, "\(placed.status) \(placed.text)")
            let orderVersion = placed.json["version"] as? Int ?? 0
            let id = placed.json["id"] as? String ?? "-"
            let adjusted = try await edges[round % 2].send(
                "POST", "/v1/products/cl-1/stock", token: admin, json: #"{"delta":1}"#, headers: ["Prefer": "wait=10"])
            #expect(adjusted.status == 200, "\(adjusted.status) \(adjusted.text)")
            let productVersion = adjusted.json["version"] as? Int ?? 0
            // … is seen at that version or later through every edge at once, the replica lagging.
            for edge in edges {
                let order = try await edge.send("GET", "/v1/orders/\(id)", token: token)
                #expect(
                    (order.json["version"] as? Int ?? -1) >= orderVersion,
                    "\(edge.base): order \(order.json["version"] ?? "-") < \(orderVersion)")
                let product = try await edge.send("GET", "/v1/products/cl-1")
                #expect(
                    (product.json["version"] as? Int ?? -1) >= productVersion,
                    "\(edge.base): product \(product.json["version"] ?? "-") < \(productVersion)")
            }
        }
    }

    @Test func aStoppedReplicaNeverGives500AndReadsRecover() async throws {
        let cluster = try Self.cluster.get()
        _ = try await prepare(cluster)
        let balancer = cluster.client(cluster.balancer)
        try cluster.dev("stop-replica")
        var answers: [Int] = []
        do {
            for _ in 0..<20 {
                let reply = try await balancer.send("GET", "/v1/products/cl-1")
                answers.append(reply.status)
                if reply.status == 503 { #expect(reply.header("Retry-After") != nil) }
                let list = try await balancer.send("GET", "/v1/products?limit=5")
                answers.append(list.status)
            }
        } catch {
            try? cluster.dev("start-replica")
            throw error
        }
        try cluster.dev("start-replica")
        print("reads with the replica stopped: \(Dictionary(answers.map { ($0, 1) }, uniquingKeysWith: +))")
        #expect(answers.allSatisfy { $0 == 200 || $0 == 503 }, "\(answers)")
        // Reads fall back to the primary while the standby is away.
        #expect(answers.filter { $0 == 200 }.count >= answers.count * 3 / 4, "\(answers)")
        #expect(try await balancer.send("GET", "/readyz").status == 200)
        let recovered = try await eventually(timeout: .seconds(30)) {
            let list = try await balancer.send("GET", "/v1/products?limit=5").status
            let one = try await balancer.send("GET", "/v1/products/cl-1").status
            return list == 200 && one == 200
        }
        #expect(recovered)
    }
}
