import AMQP
import DepotModel
import Foundation
import Messaging
import Operations
import Postgres
import Testing

/// The admin API (`/v1/admin/…`, docs/interface.md §3.9) over real HTTP, in front of a real
/// `depot all`: what the console shows and does, against the broker and the database.
@Suite("Admin API", .serialized)
struct AdminAPITests {
    @Test func deadLettersAreShownRedrivenByMessageAndByReasonWithoutLossOrDoublesAndPurged() async throws {
        let edge = try await EdgeClient.start(["DEPOT_RETRY_DELAYS": "100ms"])
        let depot = edge.depot
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        let admin = try await EdgeClient.admin()
        let customer = try await EdgeClient.token()

        // Admins only, and every answer problem+json on failure.
        #expect(try await edge.send("GET", "/v1/admin/dead-letters").status == 401)
        #expect(try await edge.send("GET", "/v1/admin/dead-letters", token: customer).status == 403)
        #expect(
            try await edge.send("POST", "/v1/admin/dead-letters/depot.orders.dead/purge", token: customer).status
                == 403)

        // A poison message, and 20 restocks of a product that does not exist yet (retried, then dead-lettered).
        try await client.amqp.publish(
            OutgoingMessage("not json", properties: .persistentJSON(messageId: "poison-1")), exchange: "",
            routingKey: "depot.orders")
        for _ in 0..<20 {
            try await client.send(.stockAdjust, correlationId: "late", AdjustStock(sku: "late", delta: 1))
        }
        let dead = try await eventually(timeout: .seconds(30)) {
            let inventory = try await client.amqp.inspectQueue("depot.inventory.dead").messageCount
            let orders = try await client.amqp.inspectQueue("depot.orders.dead").messageCount
            return inventory == 20 && orders == 1
        }
        #expect(dead)

        let list = try await edge.send("GET", "/v1/admin/dead-letters", token: admin)
        #expect(list.status == 200)
        let queues = list.json["items"] as? [[String: Any]] ?? []
        #expect(
            Set(queues.compactMap { $0["queue"] as? String }).isSuperset(of: [
                "depot.orders.dead", "depot.inventory.dead",
            ]))
        let inventory = queues.first { $0["queue"] as? String == "depot.inventory.dead" }
        #expect(inventory?["count"] as? Int == 20)
        let reasons = inventory?["reasons"] as? [[String: Any]] ?? []
        #expect(reasons.count == 1 && reasons.first?["count"] as? Int == 20, "\(reasons)")
        let reason = try #require(reasons.first?["reason"] as? String)
        #expect(reason.hasPrefix("gave up after 2 attempts"), "\(reason)")

        let shown = try await edge.send("GET", "/v1/admin/dead-letters/depot.orders.dead?limit=5", token: admin)
        #expect(shown.status == 200)
        let poison = try #require((shown.json["items"] as? [[String: Any]])?.first)
        #expect((poison["reason"] as? String)?.hasPrefix("malformed") == true, "\(poison)")
        #expect(poison["body"] as? String == "not json")
        #expect(poison["message_id"] as? String == "poison-1")
        #expect(poison["original_queue"] as? String == "depot.orders")
        let headers = (poison["headers"] as? [[String: String]] ?? []).map { $0["name"] ?? "" }
        #expect(headers.contains("x-depot-error") && headers.contains("x-depot-dead-lettered-at"), "\(headers)")
        #expect(try await client.amqp.inspectQueue("depot.orders.dead").messageCount == 1)  // looked at, not taken

        // Bad requests are 4xx problems, never 500.
        #expect(try await edge.send("GET", "/v1/admin/dead-letters/no.such.dead", token: admin).status == 404)
        #expect(
            try await edge.send("GET", "/v1/admin/dead-letters/depot.orders.dead?limit=0", token: admin).status == 400)
        let both = try await edge.send(
            "POST", "/v1/admin/dead-letters/depot.inventory.dead/redrive", token: admin,
            json: #"{"message_id":"x","reason":"y"}"#)
        #expect(both.status == 400 && both.header("Content-Type") == "application/problem+json")
        #expect(
            try await edge.send(
                "POST", "/v1/admin/dead-letters/depot.inventory.dead/redrive", token: admin, body: Data("{}".utf8),
                headers: ["Content-Type": "text/plain"]
            ).status == 415)

        // Fix the cause, then redrive one message by its id: only that one moves.
        try await client.createProducts(["late": 0])
        let letters = try await edge.send(
            "GET", "/v1/admin/dead-letters/depot.inventory.dead?limit=100", token: admin)
        let ids = (letters.json["items"] as? [[String: Any]] ?? []).compactMap { $0["message_id"] as? String }
        #expect(ids.count == 20)
        let one = try await edge.send(
            "POST", "/v1/admin/dead-letters/depot.inventory.dead/redrive", token: admin,
            json: #"{"message_id":"\#(ids[7])"}"#, headers: ["Prefer": "wait=10"])
        #expect(one.status == 200, "\(one.text)")
        #expect(one.json["state"] as? String == "succeeded", "\(one.text)")
        #expect((one.json["result"] as? [String: Any])?["redriven"] as? Int == 1)
        #expect((one.json["result"] as? [String: Any])?["remaining"] as? Int == 19)
        #expect(one.json["requested_by"] as? String == "admin-1")
        #expect(one.header("Location") == "/v1/admin/jobs/\(one.json["id"] as? String ?? "")")
        // The others went back in their order.
        let after = try await edge.send("GET", "/v1/admin/dead-letters/depot.inventory.dead?limit=100", token: admin)
        let remainingIds = (after.json["items"] as? [[String: Any]] ?? []).compactMap { $0["message_id"] as? String }
        #expect(remainingIds == ids.filter { $0 != ids[7] })

        // The reason group, as a job followed at its Location.
        let group = try await edge.send(
            "POST", "/v1/admin/dead-letters/depot.inventory.dead/redrive", token: admin,
            json: #"{"reason":"\#(reason)"}"#)
        #expect(group.status == 202, "\(group.text)")
        let location = try #require(group.header("Location"))
        let finished = try await eventually(timeout: .seconds(20)) {
            try await edge.send("GET", location, token: admin).json["state"] as? String == "succeeded"
        }
        #expect(finished)
        let job = try await edge.send("GET", location, token: admin).json
        #expect((job["result"] as? [String: Any])?["redriven"] as? Int == 19, "\(job)")
        #expect(job["done"] as? Int == 19)
        let applied = try await eventually(timeout: .seconds(30)) { try await client.stock("late").available == 20 }
        #expect(applied)
        try await Task.sleep(for: .seconds(1))
        #expect(try await client.stock("late").available == 20)  // nothing doubled
        #expect(try await client.amqp.inspectQueue("depot.inventory.dead").messageCount == 0)

        // Purge.
        let purged = try await edge.send(
            "POST", "/v1/admin/dead-letters/depot.orders.dead/purge", token: admin, headers: ["Prefer": "wait=10"])
        #expect(purged.status == 200 && (purged.json["result"] as? [String: Any])?["purged"] as? Int == 1)
        #expect(try await client.amqp.inspectQueue("depot.orders.dead").messageCount == 0)

        // Every action is in the jobs list and in the log with the operator's sub.
        let jobs = try await edge.send("GET", "/v1/admin/jobs", token: admin).json["items"] as? [[String: Any]] ?? []
        #expect(jobs.map { $0["kind"] as? String ?? "" } == ["purge", "redrive", "redrive"])
        #expect(try await edge.send("GET", "/v1/admin/jobs/\(UUID().uuidString)", token: admin).status == 404)
        let log = try String(contentsOf: depot.logDirectory.appendingPathComponent("all.log"), encoding: .utf8)
        let audit = log.split(separator: "\n").filter { $0.contains("admin action") }
        #expect(audit.count == 3 && audit.allSatisfy { $0.contains("admin-1") }, "\(audit)")
        #expect(audit.contains { $0.contains("purge") && $0.contains("depot.orders.dead") })

        await client.close()
        await depot.tearDown()
    }

    /// `depot all` with the edge on a free port; returns the process and the client once it answers.
    static func startAll(_ depot: IsolatedDepot, port: Int) async throws -> (Process, EdgeClient) {
        let process = try depot.start(["all"], label: "all-\(UUID().uuidString.prefix(4))")
        let client = EdgeClient(base: URL(string: "http://127.0.0.1:\(port)")!, depot: depot)
        let up = try await eventually(timeout: .seconds(30)) {
            (try? await client.send("GET", "/readyz").status) == 200
        }
        guard up else { throw TestEnvironment.Unreachable(description: "no edge; logs in \(depot.logDirectory.path)") }
        return (process, client)
    }

    @Test func aReasonGroupRedriveKilledHalfwayLosesAndDoublesNothingAndLeavesTheOtherReasonsInOrder() async throws {
        let port = TestEnvironment.freePort()
        let depot = try await IsolatedDepot.make([
            "DEPOT_JWT_SECRET": EdgeClient.secret, "DEPOT_HTTP_PORT": "\(port)", "DEPOT_RATE_LIMIT": "0",
            "DEPOT_RETRY_DELAYS": "50ms",
        ])
        var (all, edge) = try await Self.startAll(depot, port: port)
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        let admin = try await EdgeClient.admin()

        // Interleaved: restocks of a product not created yet (retried, then "gave up after 2
        // attempts") and restocks whose data does not fit the type ("invalid_data", at once).
        let count = 1_000
        var invalidIds: Set<String> = []
        for index in 0..<count {
            try await client.send(.stockAdjust, correlationId: "late", AdjustStock(sku: "late", delta: 1))
            let id = UUID().canonicalText
            invalidIds.insert(id)
            let body =
                #"{"correlation_id":"late","data":{"sku":\#(index)},"id":"\#(id)","occurred_at":"2026-12-01T10:00:00Z","type":"stock.adjust","version":1}"#
            try await client.amqp.publish(
                OutgoingMessage(body, properties: .persistentJSON(messageId: id, type: "stock.adjust")), exchange: "",
                routingKey: "depot.inventory")
        }
        let dead = try await eventually(timeout: .seconds(60)) {
            try await client.amqp.inspectQueue("depot.inventory.dead").messageCount == 2 * count
        }
        #expect(dead)
        // The order they are in (the consumer dead-letters several at once, not in publish order).
        let before = try await DeadLetters(amqp: client.amqp).peek("depot.inventory.dead", limit: 2 * count)
        let invalidInQueueOrder = before.filter { $0.reasonKind == "invalid_data" }.compactMap(\.messageId)
        #expect(Set(invalidInQueueOrder) == Set(invalidIds))
        try await client.createProducts(["late": 0])

        // Redrive the "gave up" group, and kill the process running it halfway.
        let started = try await edge.send(
            "POST", "/v1/admin/dead-letters/depot.inventory.dead/redrive", token: admin,
            json: #"{"reason":"gave up after 2 attempts"}"#)
        #expect(started.status == 202, "\(started.text)")
        let halfway = try await eventually(timeout: .seconds(30)) {
            try await client.stock("late").available >= 50
        }
        await depot.kill(all)
        #expect(halfway)
        let movedBeforeKill = try await client.stock("late").available
        // The messages it held, moved or not, are back or delivered: none is lost.
        #expect(movedBeforeKill < count, "the redrive finished before the kill; nothing was interrupted")

        (all, edge) = try await Self.startAll(depot, port: port)
        let again = try await edge.send(
            "POST", "/v1/admin/dead-letters/depot.inventory.dead/redrive", token: admin,
            json: #"{"reason":"gave up after 2 attempts"}"#, headers: ["Prefer": "wait=10"])
        // Under load it may outlast the wait: then it is followed at its Location, as the console does.
        let location = try #require(again.header("Location"), "\(again.text)")
        let succeeded = try await eventually(timeout: .seconds(60)) {
            try await edge.send("GET", location, token: admin).json["state"] as? String == "succeeded"
        }
        let job = try await edge.send("GET", location, token: admin)
        #expect(succeeded, "\(job.text)")

        // Every edge answers for every job, as behind a balancer: a second edge on the same database.
        let otherPort = TestEnvironment.freePort()
        try depot.start(["edge"], label: "edge-2", settings: ["DEPOT_HTTP_PORT": "\(otherPort)"])
        let other = EdgeClient(base: URL(string: "http://127.0.0.1:\(otherPort)")!, depot: depot)
        #expect(try await eventually(timeout: .seconds(30)) { (try? await other.send("GET", "/readyz").status) == 200 })
        let seen = try await other.send("GET", location, token: admin)
        #expect(seen.status == 200 && seen.json["state"] as? String == "succeeded", "\(seen.text)")
        #expect(
            (seen.json["result"] as? [String: Any])?["redriven"] as? Int
                == job.json["result"].flatMap {
                    ($0 as? [String: Any])?["redriven"] as? Int
                })
        #expect(try await other.send("GET", "/v1/admin/jobs/\(UUID())", token: admin).status == 404)
        #expect(try await other.send("GET", "/v1/admin/jobs/not-a-uuid", token: admin).status == 404)
        // The job the kill interrupted: its edge stopped writing it, so every edge shows it failed,
        // saying what to do.
        let interruptedLocation = try #require(started.header("Location"))
        let shownFailed = try await eventually(timeout: .seconds(60)) {
            try await other.send("GET", interruptedLocation, token: admin).json["state"] as? String == "failed"
        }
        let interrupted = try await other.send("GET", interruptedLocation, token: admin).text
        #expect(shownFailed && interrupted.contains("stopped before it finished"), "\(interrupted)")
        let listed = try await other.send("GET", "/v1/admin/jobs", token: admin).json["items"] as? [[String: Any]]
        #expect(
            listed?.compactMap { $0["id"] as? String }
                == [job.json["id"] as? String, started.json["id"] as? String].compactMap { $0 }, "\(listed ?? [])")
        let applied = try await eventually(timeout: .seconds(30)) { try await client.stock("late").available == count }
        #expect(applied)
        try await Task.sleep(for: .seconds(1))
        #expect(try await client.stock("late").available == count)  // nothing doubled

        // The other group is all there, in its order.
        let left = try await edge.send(
            "GET", "/v1/admin/dead-letters/depot.inventory.dead?limit=100", token: admin)
        #expect(left.json["count"] as? Int == count)
        let ids = (left.json["items"] as? [[String: Any]] ?? []).compactMap { $0["message_id"] as? String }
        #expect(ids == Array(invalidInQueueOrder.prefix(100)))
        await client.close()
        await depot.tearDown()
    }

    @Test func overviewFlowOrderRebuildCheckAndReplayDryRun() async throws {
        let edge = try await EdgeClient.start()
        let depot = edge.depot
        try await depot.waitUntilConsuming(["depot.orders", "depot.inventory", "depot.payments", "depot.projector"])
        let client = try await SagaClient(depot)
        let admin = try await EdgeClient.admin()
        let customer = try await EdgeClient.token()

        let overview = try await edge.send("GET", "/v1/admin/overview", token: admin)
        #expect(overview.status == 200, "\(overview.text)")
        #expect(overview.json["broker_connected"] as? Bool == true)
        let queues = overview.json["queues"] as? [[String: Any]] ?? []
        let orders = queues.first { $0["name"] as? String == "depot.orders" }
        #expect((orders?["consumers"] as? Int ?? 0) >= 1 && orders?["health"] as? String == "ok", "\(queues)")
        #expect((overview.json["outboxes"] as? [[String: Any]])?.count == 3)
        #expect((overview.json["projections"] as? [[String: Any]])?.count == 2)
        let connections = overview.json["connections"] as? [String: Any]
        #expect(
            (connections?["depot"] as? [[String: Any]] ?? []).contains {
                $0["application_name"] as? String == "depot-all"
            })
        #expect(try await edge.send("GET", "/v1/admin/overview", token: customer).status == 403)

        // Three orders: they appear in the flow the edge samples.
        try await client.createProducts(["mug": 100])
        var placed: [String] = []
        for index in 0..<3 {
            let reply = try await edge.send(
                "POST", "/v1/orders", token: customer,
                json: #"{"lines":[{"sku":"mug","quantity":1}],"payment":{"token":"tok_ok"}}"#,
                headers: ["Prefer": "wait=10", "Idempotency-Key": "k\(index)"])
            #expect(reply.status == 201 && reply.json["status"] as? String == "confirmed", "\(reply.text)")
            placed.append(reply.json["id"] as? String ?? "")
        }
        let sampled = try await eventually(timeout: .seconds(10)) {
            let totals =
                try await edge.send("GET", "/v1/admin/flow?window=5m", token: admin).json["totals"]
                as? [String: Any]
            return totals?["placed"] as? Int == 3 && totals?["confirmed"] as? Int == 3
        }
        #expect(sampled)
        let flow = try await edge.send("GET", "/v1/admin/flow?window=1h", token: admin).json
        let points = flow["points"] as? [[String: Any]] ?? []
        #expect(points.count == 60 && flow["step_seconds"] as? Int == 60)
        #expect(points.contains { ($0["latency_p50_ms"] as? Double ?? -1) >= 0 }, "no latency in \(points.suffix(2))")
        #expect(try await edge.send("GET", "/v1/admin/flow?window=2d", token: admin).status == 400)

        // An order's projection against a rebuild from its events: equal, then not after a corruption.
        let check = try await edge.send("GET", "/v1/admin/orders/\(placed[0])/rebuild-check", token: admin)
        #expect(check.status == 200, "\(check.text)")
        #expect(check.json["matches"] as? Bool == true, "\(check.text)")
        #expect((check.json["events"] as? Int ?? 0) >= 5)
        try await client.pool.withConnection {
            try await $0.execute(
                "UPDATE projections.orders SET status = 'pending' WHERE id = \(UUID(uuidString: placed[0])!)")
        }
        let broken = try await edge.send("GET", "/v1/admin/orders/\(placed[0])/rebuild-check", token: admin)
        #expect(broken.json["matches"] as? Bool == false, "\(broken.text)")
        #expect((broken.json["live"] as? [String: Any])?["status"] as? String == "pending")
        #expect((broken.json["rebuilt"] as? [String: Any])?["status"] as? String == "confirmed")
        #expect(try await edge.send("GET", "/v1/admin/orders/\(UUID())/rebuild-check", token: admin).status == 404)

        // The replay dry-run finds that row, with progress in events, and changes nothing.
        let dryRun = try await edge.send(
            "POST", "/v1/admin/replay/dry-run", token: admin, json: #"{"projections":["orders"]}"#,
            headers: ["Prefer": "wait=10"])
        #expect(dryRun.status == 200 && dryRun.json["state"] as? String == "succeeded", "\(dryRun.text)")
        let differences = (dryRun.json["result"] as? [String: Any])?["differences"] as? [[String: Any]] ?? []
        #expect(differences.first { $0["table"] as? String == "orders" }?["different"] as? Int == 1, "\(differences)")
        #expect((dryRun.json["total"] as? Int ?? 0) > 0 && dryRun.json["done"] as? Int == dryRun.json["total"] as? Int)
        let status = try await client.pool.withConnection {
            try await $0.query("SELECT status FROM projections.orders WHERE id = \(UUID(uuidString: placed[0])!)")
                .first!.decode(0, as: String.self)
        }
        #expect(status == "pending")  // a dry run changes nothing
        #expect(
            try await edge.send("POST", "/v1/admin/replay/dry-run", token: admin, json: #"{"projections":["x"]}"#)
                .fields == ["projections[0]"])

        // The console: the page and its files with a strict policy, no inline script.
        let page = try await edge.send("GET", "/console")
        #expect(page.status == 200 && page.text.contains("<script src=\"/console/console.js\""))
        let policy = try #require(page.header("Content-Security-Policy"))
        #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
        #expect(!page.text.contains("<script>") && !page.text.contains("style="))
        let script = try await edge.send("GET", "/console/console.js")
        #expect(script.status == 200 && script.header("Content-Type")?.hasPrefix("text/javascript") == true)
        #expect(!script.text.contains("localStorage") && !script.text.contains("document.cookie"))

        await client.close()
        await depot.tearDown()
    }
}
