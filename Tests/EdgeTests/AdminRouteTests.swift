import DepotModel
import Foundation
import HTTPTypes
import Operations
import Synchronization
import Testing

@testable import Edge

/// The admin API's routing, checks and jobs in process, on fake operations; what needs the
/// broker and the database is in Tests/IntegrationTests/AdminAPITests.swift.
@Suite("Admin routes")
struct AdminRouteTests {
    static func letter(_ id: String, reason: String) -> DeadLetters.Letter {
        DeadLetters.Letter(
            reason: reason, attempts: 2, originalExchange: "depot.commands", originalRoutingKey: "stock.adjust",
            originalQueue: "depot.inventory", deadLetteredAt: "2026-12-01T10:00:00Z", messageId: id,
            type: "stock.adjust", headers: ["x-depot-error": reason], body: #"{"id":"\#(id)"}"#)
    }

    @Test("every admin route needs an admin token: 401 without one, 403 for a customer")
    func adminsOnly() async throws {
        let edge = try await EdgeHarness()
        let customer = try await edge.token()
        try await edge.test { client in
            for route in RouteTable.all where route.path.hasPrefix("/v1/admin/") {
                let path = route.path.replacingOccurrences(of: "{queue}", with: "depot.orders.dead")
                    .replacingOccurrences(of: "{id}", with: UUID().canonicalText)
                let json = route.method == .post ? "{}" : nil
                let anonymous = try await client.send(route.method, path, json: json)
                #expect(anonymous.status == 401 && anonymous.isProblem, "\(route.operationId)")
                let refused = try await client.send(route.method, path, token: customer, json: json)
                #expect(refused.status == 403 && refused.isProblem, "\(route.operationId)")
            }
        }
    }

    @Test("dead letters: grouped reasons, 404 for a queue that is not Depot's or not declared")
    func deadLetterQueues() async throws {
        let edge = try await EdgeHarness()
        edge.operations.declare(
            "depot.inventory.dead",
            [
                Self.letter("a", reason: "gave up after 6 attempts: no product late"),
                Self.letter("b", reason: "gave up after 6 attempts: no product other"),
                Self.letter("c", reason: "invalid_data: delta"),
            ])
        let admin = try await edge.admin()
        try await edge.test { client in
            let list = try await client.send(.get, "/v1/admin/dead-letters", token: admin)
            #expect(list.status == 200 && list.header("Cache-Control") == "no-store")
            let items = list.json["items"] as? [[String: Any]] ?? []
            #expect(items.count == 1 && items.first?["count"] as? Int == 3)
            let reasons = items.first?["reasons"] as? [[String: Any]] ?? []
            #expect(reasons.map { $0["reason"] as? String ?? "" } == ["gave up after 6 attempts", "invalid_data"])
            #expect(reasons.map { $0["count"] as? Int ?? 0 } == [2, 1])

            let shown = try await client.send(.get, "/v1/admin/dead-letters/depot.inventory.dead?limit=2", token: admin)
            #expect(shown.json["count"] as? Int == 3)
            let letters = shown.json["items"] as? [[String: Any]] ?? []
            #expect(letters.map { $0["message_id"] as? String ?? "" } == ["a", "b"])
            #expect(letters.first?["reason_kind"] as? String == "gave up after 6 attempts")
            #expect((letters.first?["headers"] as? [[String: String]])?.first?["name"] == "x-depot-error")

            for path in ["/v1/admin/dead-letters/depot.orders.dead", "/v1/admin/dead-letters/anything"] {
                let missing = try await client.send(.get, path, token: admin)
                #expect(missing.status == 404 && missing.isProblem, "\(path)")
            }
            for limit in ["0", "101", "x"] {
                let bad = try await client.send(
                    .get, "/v1/admin/dead-letters/depot.inventory.dead?limit=\(limit)", token: admin)
                #expect(bad.status == 400 && bad.fields == ["limit"], "\(limit)")
            }
        }
    }

    @Test("redrive and purge bodies are checked field by field")
    func redriveBodies() async throws {
        let edge = try await EdgeHarness()
        edge.operations.declare("depot.inventory.dead", [Self.letter("a", reason: "r: 1")])
        let admin = try await edge.admin()
        try await edge.test { client in
            let path = "/v1/admin/dead-letters/depot.inventory.dead/redrive"
            let cases: [(String, [String])] = [
                (#"{"message_id":"a","reason":"r"}"#, ["body"]),
                (#"{"message_id":""}"#, ["message_id"]),
                (#"{"reason":7}"#, ["reason"]),
                (#"{"queue":"x"}"#, ["queue"]),
                (#"[]"#, ["body"]),
                ("not json", ["body"]),
            ]
            for (body, fields) in cases {
                let reply = try await client.send(.post, path, token: admin, json: body)
                #expect(reply.status == 400 && reply.isProblem && reply.fields == fields, "\(body): \(reply.text)")
            }
            let text = try await client.send(
                .post, path, token: admin, body: Array("{}".utf8), headers: ["Content-Type": "text/plain"])
            #expect(text.status == 415)
            let dryRun = try await client.send(
                .post, "/v1/admin/replay/dry-run", token: admin, json: #"{"projections":["orders","nope",3]}"#)
            #expect(dryRun.status == 400 && dryRun.fields == ["projections[1]", "projections[2]"])
            #expect(try await client.send(.get, "/v1/admin/flow?window=7m", token: admin).fields == ["window"])
            // Nothing moved.
            #expect(edge.operations.letters("depot.inventory.dead")?.count == 1)
        }
    }

    @Test("a redrive is a job: 202 with its Location, run in order by the jobs service, progress and result")
    func jobs() async throws {
        let edge = try await EdgeHarness()
        edge.operations.declare(
            "depot.inventory.dead",
            [Self.letter("a", reason: "r: 1"), Self.letter("b", reason: "s: 2"), Self.letter("c", reason: "r: 3")])
        let admin = try await edge.admin()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await edge.jobs.run() }
            try await edge.test { client in
                let accepted = try await client.send(
                    .post, "/v1/admin/dead-letters/depot.inventory.dead/redrive", token: admin,
                    json: #"{"reason":"r: anything after the colon"}"#)
                #expect(accepted.status == 202)
                let id = try #require(accepted.json["id"] as? String)
                #expect(accepted.header("Location") == "/v1/admin/jobs/\(id)")
                #expect(["queued", "running", "succeeded"].contains(accepted.json["state"] as? String ?? ""))
                #expect(accepted.json["requested_by"] as? String == "admin-1")
                #expect(accepted.json["selection"] as? String == "reason r: anything after the colon")

                let purged = try await client.send(
                    .post, "/v1/admin/dead-letters/depot.inventory.dead/purge", token: admin,
                    headers: ["Prefer": "wait=5"])
                #expect(purged.status == 200 && purged.header("Preference-Applied") == "wait=5")
                #expect((purged.json["result"] as? [String: Any])?["purged"] as? Int == 1)  // after the redrive of 2

                let job = try await client.send(.get, "/v1/admin/jobs/\(id)", token: admin)
                #expect(job.json["state"] as? String == "succeeded", "\(job.text)")
                #expect((job.json["result"] as? [String: Any])?["redriven"] as? Int == 2)
                #expect(job.json["done"] as? Int == 2 && job.json["finished_at"] is String)
                let list = try await client.send(.get, "/v1/admin/jobs", token: admin)
                #expect(
                    (list.json["items"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } == [
                        "purge", "redrive",
                    ])
                #expect(
                    try await client.send(.get, "/v1/admin/jobs/\(UUID().canonicalText)", token: admin).status == 404)
            }
            group.cancelAll()
        }
    }

    @Test("the same job still queued is answered instead of a second; too many waiting is 429 with Retry-After")
    func jobQueueBound() async throws {
        let edge = try await EdgeHarness()  // the jobs service does not run: jobs stay queued
        edge.operations.declare("depot.orders.dead")
        let admin = try await edge.admin()
        try await edge.test { client in
            let first = try await client.send(
                .post, "/v1/admin/replay/dry-run", token: admin, json: #"{"projections":["products","orders"]}"#)
            let again = try await client.send(
                .post, "/v1/admin/replay/dry-run", token: admin, json: #"{"projections":["orders","products"]}"#)
            #expect(first.status == 202 && again.status == 202)
            #expect(first.json["id"] as? String == again.json["id"] as? String)
            for index in 1..<AdminJobs.maximumQueued {
                let reply = try await client.send(
                    .post, "/v1/admin/dead-letters/depot.orders.dead/redrive", token: admin,
                    json: #"{"message_id":"m\#(index)"}"#)
                #expect(reply.status == 202, "\(index): \(reply.text)")
            }
            let refused = try await client.send(
                .post, "/v1/admin/dead-letters/depot.orders.dead/purge", token: admin)
            #expect(refused.status == 429 && refused.header("Retry-After") == "5" && refused.isProblem)
        }
    }

    @Test("the broker away is 503 with Retry-After, never 500")
    func brokerAway() async throws {
        let edge = try await EdgeHarness()
        edge.operations.declare("depot.orders.dead")
        edge.operations.connected.store(false, ordering: .relaxed)
        let admin = try await edge.admin()
        try await edge.test { client in
            for (method, path) in [
                (HTTPRequest.Method.get, "/v1/admin/dead-letters"), (.get, "/v1/admin/dead-letters/depot.orders.dead"),
                (.post, "/v1/admin/dead-letters/depot.orders.dead/purge"),
            ] {
                let reply = try await client.send(method, path, token: admin)
                #expect(reply.status == 503 && reply.header("Retry-After") == "5" && reply.isProblem, "\(path)")
            }
            let overview = try await client.send(.get, "/v1/admin/overview", token: admin)
            #expect(overview.status == 503 && overview.isProblem)
        }
    }

    @Test("the console page and its files carry a strict Content-Security-Policy and load nothing from elsewhere")
    func consolePage() async throws {
        let edge = try await EdgeHarness()
        try await edge.test { client in
            for asset in ConsolePage.assets {
                let reply = try await client.send(.get, asset.path)
                #expect(reply.status == 200, "\(asset.path)")
                let policy = reply.header("Content-Security-Policy") ?? ""
                #expect(policy.hasPrefix("default-src 'none'") && policy.contains("script-src 'self'"))
                #expect(!policy.contains("unsafe") && policy.contains("frame-ancestors 'none'"))
                #expect(reply.header("X-Content-Type-Options") == "nosniff")
                // Only the SVG namespace, which is a name, not a place anything is loaded from.
                let text = reply.text.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
                #expect(!text.contains("http://") && !text.contains("https://"), "\(asset.path) names another host")
            }
            let page = try await client.send(.get, "/console")
            #expect(page.text.contains(#"<script src="/console/console.js" defer></script>"#))
            // No inline script or style: every <script> has a src, no style attribute or element.
            #expect(page.text.components(separatedBy: "<script").count == 2)
            #expect(!page.text.contains("style=") && !page.text.contains("<style"))
            #expect(page.text.range(of: #" on[a-z]+="#, options: .regularExpression) == nil, "an inline event handler")
            let script = try await client.send(.get, "/console/console.js")
            for forbidden in ["localStorage", "sessionStorage", "document.cookie", "innerHTML", "eval("] {
                #expect(!script.text.contains(forbidden), "console.js uses \(forbidden)")
            }
        }
    }

    @Test("the flow ring: rates per step, latency from placed to final, growth of the dead-letter queues")
    func flowHistory() {
        let history = AdminFlowHistory()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func event(_ position: Int64, _ type: String, _ order: String, _ secondsAgo: Double) -> FlowEvent {
            FlowEvent(position: position, type: type, orderId: order, occurredAt: now.addingTimeInterval(-secondsAgo))
        }
        history.record(
            FlowSample(
                events: [
                    event(1, "order.placed", "a", 12), event(2, "order.placed", "b", 12),
                    event(3, "order.confirmed", "a", 11.9), event(4, "order.rejected", "b", 11.5),
                    event(5, "order.placed", "old", 4_000),
                ], position: 5, deadLetters: 3),
            now: now)
        history.record(FlowSample(events: [], position: 7, deadLetters: 5), now: now)
        history.record(FlowSample(events: [], position: 7, deadLetters: 1), now: now)  // a redrive: not counted
        let series = history.series(window: 300, step: 5, now: now)
        #expect(series.points.count == 60 && series.position == 7)
        #expect(series.totals.placed == 2 && series.totals.confirmed == 1 && series.totals.rejected == 1)
        #expect(series.totals.deadLettered == 2)
        let busy = series.points.filter { $0.placedPerSecond > 0 }
        #expect(busy.count == 1 && busy.first?.placedPerSecond == 0.4)
        let latencies = series.points.compactMap(\.latencyP50Ms)
        #expect(latencies.count == 1 && abs(latencies[0] - 100) < 1 || abs(latencies[0] - 500) < 1, "\(latencies)")
        #expect(series.points.last?.deadLetteredPerMinute == 24)
        // An hour later the ring has forgotten it all.
        let later = history.series(window: 3_600, step: 60, now: now.addingTimeInterval(3_700))
        #expect(later.totals.placed == 0 && later.points.count == 60)
    }
}
