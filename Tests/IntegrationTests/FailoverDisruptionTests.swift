import DepotModel
import Foundation
import Operations
import Postgres
import Synchronization
import Testing

/// The loss of the PostgreSQL primary under a steady stream of orders: the standby is cut off
/// first (a partition), the primary keeps working alone for a moment, then it is stopped hard and
/// the standby promoted (`scripts/dev cluster failover`). With synchronous replication the
/// primary could commit nothing the standby did not have, so nothing accepted is lost; with
/// asynchronous replication what it committed alone is gone, and `FailoverOutcome` names it.
struct FailoverOutcome: CustomStringConvertible {
    var traffic: OrderTraffic
    /// From the hard stop until the standby was promoted (the script returned).
    var promotedAfter: Duration
    /// From the hard stop until the first order sent after it was accepted (202).
    var firstAcceptedAfter: Duration?
    /// From the hard stop until the first order confirmed on the new primary.
    var firstConfirmedAfter: Duration?
    /// docs/interface.md §5's guarantees, as `SagaClient.guaranteeViolations` checks them.
    var violations: [String]
    /// Events in the log that the services' tables contradict, and order histories with a gap.
    var contradictions: [String]
    /// Orders answered 202 that the orders service does not have.
    var missingAcceptedOrders: [String]
    /// Rows of the live projections that differ from a rebuild from the event log.
    var rebuildDifferences: Int
    /// Processes that are not the ones running before (a restart) or not running at all.
    var restartedProcesses: [String]

    var lostNothing: Bool {
        violations.isEmpty && contradictions.isEmpty && missingAcceptedOrders.isEmpty && rebuildDifferences == 0
    }

    var description: String {
        func ms(_ duration: Duration?) -> String {
            duration.map { "\(Int($0 / .milliseconds(1))) ms" } ?? "never"
        }
        return """
            traffic: \(traffic.summary)
            after the hard stop: promoted \(ms(promotedAfter)), first order accepted \(ms(firstAcceptedAfter)), \
            first order confirmed \(ms(firstConfirmedAfter))
            accepted orders missing: \(missingAcceptedOrders.count)\(missingAcceptedOrders.isEmpty ? "" : " e.g. \(missingAcceptedOrders.prefix(3))")
            guarantees broken: \(violations.isEmpty ? "none" : violations.joined(separator: "; "))
            event log contradicted: \(contradictions.isEmpty ? "never" : contradictions.joined(separator: "; "))
            projection rows differing from a rebuild: \(rebuildDifferences)
            processes restarted or gone: \(restartedProcesses.isEmpty ? "none" : restartedProcesses.joined(separator: ", "))
            """
    }
}

enum FailoverDrill {
    /// Streams orders through the balancer, cuts the standby off for `partition`, fails over,
    /// streams on for `after`, then lets everything settle and checks it.
    static func run(
        _ cluster: ClusterDisruptionTests.Cluster, token: String, partition: Duration = .seconds(2),
        after: Duration = .seconds(8), settle: Duration
    ) async throws -> FailoverOutcome {
        let processes = try processIDs(cluster)
        let baseline = try await ClusterDisruptionTests().ordersSoFar(cluster)
        let balancer = cluster.client(cluster.balancer)
        let traffic = ClusterDisruptionTests.orderTraffic()
        let running = Task { await ClusterDisruptionTests.stream(traffic, through: balancer, token: token) }
        try await Task.sleep(for: .seconds(3))
        try cluster.dev("cut-replica")
        try await Task.sleep(for: partition)
        let before = Date()
        // The script prints when it stopped the primary (after its own start-up).
        let output = try cluster.dev("failover")
        let killedAt =
            output.split(separator: "\n").first { $0.hasPrefix("stopped_at=") }
            .flatMap { Double($0.dropFirst("stopped_at=".count)) }.map(Date.init(timeIntervalSince1970:)) ?? before
        let promotedAfter = Duration.milliseconds(Int(Date().timeIntervalSince(killedAt) * 1_000))
        try await Task.sleep(for: after)
        traffic.stop()
        await running.value
        let resent = try await traffic.resendPending(balancer, token: token)
        #expect(resent, "keys still not accepted: \(traffic.summary)")

        let client = try await SagaClient(cluster.depot)
        defer { Task { await client.close() } }
        let violations = try await client.settledViolations(
            expectedOrders: baseline + traffic.acceptedOrders.count, timeout: settle)
        let firstConfirmed = try await client.pool.withConnection { connection in
            try await connection.query(
                """
                SELECT extract(epoch FROM min(updated_at))::float8 FROM orders.orders
                WHERE status = 'confirmed' AND updated_at > to_timestamp(\(killedAt.timeIntervalSince1970))
                """
            )[0].decode(0, as: Double?.self)
        }
        let accepted = try PostgresJSON(encoding: traffic.acceptedOrders.map(\.canonicalText))
        let missing = try await client.pool.withConnection { connection in
            try await connection.query(
                """
                SELECT a.id FROM jsonb_array_elements_text(\(accepted)) AS a(id)
                WHERE NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id::text = a.id)
                """
            ).map { try $0.decode(0, as: String.self) }
        }
        let differences = try await ProjectionRebuild(pool: client.pool).dryRun()
        let now = try processIDs(cluster)
        return FailoverOutcome(
            traffic: traffic, promotedAfter: promotedAfter,
            firstAcceptedAfter: traffic.firstAcceptance(sentAfter: killedAt).map {
                .milliseconds(Int($0.timeIntervalSince(killedAt) * 1_000))
            },
            firstConfirmedAfter: firstConfirmed.map {
                .milliseconds(Int(($0 - killedAt.timeIntervalSince1970) * 1_000))
            },
            violations: violations, contradictions: try await contradictions(client),
            missingAcceptedOrders: missing,
            rebuildDifferences: differences.reduce(0) { $0 + $1.added + $1.removed + $1.different },
            restartedProcesses: processes.keys.sorted().filter { name in
                now[name] != processes[name] || kill(processes[name]!, 0) != 0
            })
    }

    /// The event log against the services' tables: an order's history without its start, an
    /// event about an order, charge or reservation the database does not have, a final event
    /// other than the order's status.
    static func contradictions(_ client: SagaClient) async throws -> [String] {
        let orderEvents =
            "('order.placed', 'stock.reserved', 'stock.rejected', 'stock.released', 'payment.requested', 'payment.settled', 'payment.declined', 'payment.refunded', 'order.confirmed', 'order.rejected', 'order.cancelled')"
        let checks: [(String, String)] = [
            (
                "events of orders the orders service does not have",
                """
                SELECT count(DISTINCT correlation_id) FROM eventlog.events e WHERE e.type IN \(orderEvents)
                AND NOT EXISTS (SELECT 1 FROM orders.orders o WHERE o.id::text = e.correlation_id)
                """
            ),
            (
                "orders whose history lacks order.placed",
                """
                SELECT count(*) FROM orders.orders o WHERE NOT EXISTS
                    (SELECT 1 FROM eventlog.events e WHERE e.correlation_id = o.id::text AND e.type = 'order.placed')
                """
            ),
            (
                "confirmed orders whose history lacks a step",
                """
                SELECT count(*) FROM orders.orders o WHERE o.status = 'confirmed' AND (
                    SELECT count(DISTINCT type) FROM eventlog.events e WHERE e.correlation_id = o.id::text
                    AND e.type IN ('order.placed', 'stock.reserved', 'payment.requested', 'payment.settled', 'order.confirmed')) <> 5
                """
            ),
            (
                "final events other than the order's status",
                """
                SELECT count(*) FROM orders.orders o JOIN eventlog.events e ON e.correlation_id = o.id::text
                WHERE e.type IN ('order.confirmed', 'order.rejected', 'order.cancelled') AND e.type <> 'order.' || o.status
                """
            ),
            (
                "payment.settled without a settled charge",
                """
                SELECT count(*) FROM eventlog.events e WHERE e.type = 'payment.settled' AND NOT EXISTS (SELECT 1
                    FROM payments.charges c WHERE c.order_id::text = e.correlation_id AND c.status IN ('settled', 'refunded'))
                """
            ),
            (
                "settled charges without payment.settled",
                """
                SELECT count(*) FROM payments.charges c WHERE c.status IN ('settled', 'refunded') AND NOT EXISTS
                    (SELECT 1 FROM eventlog.events e WHERE e.correlation_id = c.order_id::text AND e.type = 'payment.settled')
                """
            ),
            (
                "charges the payment provider took that no settled charge explains",
                """
                SELECT count(*) FROM payments.simulated_provider p WHERE p.outcome = 'settled' AND NOT EXISTS
                    (SELECT 1 FROM payments.charges c WHERE c.order_id::text = p.idempotency_key
                     AND c.status = CASE WHEN p.refunded THEN 'refunded' ELSE 'settled' END)
                """
            ),
            (
                "stock.reserved without a reservation",
                """
                SELECT count(*) FROM eventlog.events e WHERE e.type = 'stock.reserved' AND NOT EXISTS
                    (SELECT 1 FROM inventory.reservations r WHERE r.order_id::text = e.correlation_id)
                """
            ),
        ]
        return try await client.failing(checks)
    }

    /// The pid of every process of the cluster, by name (edge-1, orders-2, …).
    static func processIDs(_ cluster: ClusterDisruptionTests.Cluster) throws -> [String: Int32] {
        let data =
            ProcessInfo.processInfo.environment["DEPOT_DATA_DIR"].map(URL.init(fileURLWithPath:))
            ?? TestEnvironment.repositoryRoot.appendingPathComponent(".data")
        let folder = data.appendingPathComponent("\(cluster.base == 5700 ? "cluster" : "cluster-\(cluster.base)")/run")
        var found: [String: Int32] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) where file.hasSuffix(".pid") {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            if let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                found[String(file.dropLast(4))] = pid
            }
        }
        return found
    }
}

extension ClusterDisruptionTests {
    /// The synchronous standby away: commits wait, the edge answers 503 with Retry-After after
    /// DEPOT_CONFIRM_TIMEOUT (never 500), and the same keys succeed once it is back.
    @Test func withTheSynchronousStandbyAwayCommandsGet503ThenSucceed() async throws {
        let cluster = try Self.cluster.get()
        let token = try await prepare(cluster)
        let baseline = try await ordersSoFar(cluster)
        #expect(try cluster.dev("replication").hasPrefix("sync (standby names on the primary: '*')"))
        let balancer = cluster.client(cluster.balancer)
        let traffic = Self.orderTraffic()
        try cluster.dev("stop-replica")
        let started = ContinuousClock.now
        do {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<4 {
                    group.addTask { await traffic.order(balancer, token: token, key: "sync-away-\(index)") }
                }
            }
        }
        let waited = ContinuousClock.now - started
        try cluster.dev("start-replica")
        print("orders with the synchronous standby stopped, answered after \(waited): \(traffic.summary)")
        #expect(traffic.state.withLock { $0.byStatus } == [503: 4], "\(traffic.summary)")
        #expect(traffic.state.withLock { $0.badUnavailable } == [])
        // The cluster's DEPOT_CONFIRM_TIMEOUT is the default, 5 s.
        #expect(waited >= .milliseconds(4_500) && waited < .seconds(20), "answered after \(waited)")
        #expect(try await traffic.resendPending(balancer, token: token), "\(traffic.summary)")
        #expect(traffic.serverErrors == 0, "\(traffic.summary)")
        try await checkGuarantees(cluster, baseline: baseline, stream: traffic)
    }

    /// The issue's failover: synchronous replication, the primary lost under load, the standby
    /// promoted; nothing accepted is lost, nothing doubled, nothing restarted by hand.
    @Test func losingThePrimaryWithSynchronousReplicationLosesNothing() async throws {
        let cluster = try Self.cluster.get()
        let token = try await prepare(cluster)
        try cluster.dev("replication", "sync")
        let outcome = try await FailoverDrill.run(cluster, token: token, settle: .seconds(90))
        print("failover with synchronous replication:\n\(outcome)")
        #expect(outcome.lostNothing, "\(outcome)")
        #expect(outcome.traffic.serverErrors == 0, "\(outcome)")
        #expect(outcome.traffic.state.withLock { $0.badUnavailable } == [])
        #expect(outcome.restartedProcesses == [], "\(outcome)")
        #expect(outcome.firstConfirmedAfter != nil, "\(outcome)")
        // LISTEN moved to the new primary: the projector's NOTIFY wakes an edge's `Prefer: wait`
        // (without it the answer would come at the 10 s deadline), and the relays listen there.
        let started = ContinuousClock.now
        let waited = try await cluster.client(cluster.balancer).send(
            "POST", "/v1/orders", token: token, json: Self.orderTraffic().body,
            headers: ["Idempotency-Key": "after-failover-\(UUID().canonicalText.prefix(8))", "Prefer": "wait=10"])
        let answeredAfter = ContinuousClock.now - started
        #expect(waited.status == 201 && answeredAfter < .seconds(5), "\(waited.status) after \(answeredAfter)")
        let client = try await SagaClient(cluster.depot)
        let listeners = try await client.count(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND NOT pg_is_in_recovery()")
        await client.close()
        // 2 edges, and the relays of 2 orders, 2 inventory and 2 payments processes.
        #expect(listeners >= 8, "\(listeners) LISTEN connections on the new primary")
        // The way back: the old primary rewound into a standby, synchronous replication again.
        let rejoinStarted = ContinuousClock.now
        try cluster.dev("rejoin")
        print("the old primary streams again \(ContinuousClock.now - rejoinStarted) after `rejoin`")
        #expect(try cluster.dev("replication").hasPrefix("sync (standby names on the primary: '*')"))
    }
}

/// The same failover with asynchronous replication, on a cluster of its own (what it loses
/// would break every later check of a shared one). It shows what is lost; it must lose something
/// for the synchronous test's "nothing lost" to mean anything.
@Suite("PostgreSQL failover with asynchronous replication", .serialized)
struct AsynchronousFailoverDisruptionTests {
    @Test func losingThePrimaryWithAsynchronousReplicationLosesWhatOnlyItHad() async throws {
        let cluster = try ClusterDisruptionTests.Cluster.up(base: 6700)
        defer { _ = try? cluster.dev("down", "--purge") }
        let token = try await ClusterDisruptionTests().prepare(cluster)
        try cluster.dev("replication", "async")
        // A longer partition than the synchronous test's: the primary must commit alone for a while.
        let outcome = try await FailoverDrill.run(cluster, token: token, partition: .seconds(3), settle: .seconds(20))
        print("failover with ASYNCHRONOUS replication (what it can lose):\n\(outcome)")
        #expect(!outcome.lostNothing, "asynchronous replication lost nothing this time: \(outcome)")
        // What it cannot do even so: answer 500, or need a process restarted.
        #expect(outcome.traffic.serverErrors == 0, "\(outcome)")
        #expect(outcome.restartedProcesses == [], "\(outcome)")
        #expect(outcome.firstConfirmedAfter != nil, "\(outcome)")
        try cluster.dev("rejoin")
    }
}
