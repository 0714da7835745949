import AMQP
import ArgumentParser
import DepotModel
import Edge
import Foundation
import Hummingbird
import Logging
import Messaging
import Metrics
import Postgres
import Prometheus
import ServiceLifecycle
import Synchronization

/// The edge under wrk (64 connections): a projection read against a constant of the same size
/// on the same server and middleware, and accepted orders against the raw confirmed-publish rate.
extension DepotBench {
    /// As in `depot`: swift-metrics bootstrapped with the registry the edge serves, so the
    /// middleware's metrics cost what they cost in production.
    static let metricsRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    struct WrkResult {
        var requestsPerSecond: Double
        var p50: Double
        var p99: Double
        var non2xx: Int
    }

    func edgeBenchmark() async throws {
        let endpoint = try AMQPEndpoint.list(amqpURL)[0]
        let port = 18_090
        let base = "http://127.0.0.1:\(port)"

        // A fresh database, migrated by the release `depot`, with one confirmed order in the projection.
        let benchURL = try await freshDatabase("depot_bench_edge")
        var options = PostgresConfiguration.Options()
        options.maxConnections = 16
        let primary = PostgresPool(configuration: try PostgresConfiguration(url: benchURL, options: options))
        let orderId = UUID().canonicalText
        try await primary.withConnection { connection in
            try await connection.execute(
                """
                INSERT INTO projections.orders (id, customer_id, status, lines, total_cents, payment_status, payment_reference, created_at, updated_at, version, position)
                VALUES (\(UUID(uuidString: orderId)!), 'bench-customer', 'confirmed', '[{"sku":"bench-1","quantity":2,"unit_price_cents":250}]', 500,
                        'settled', 'sim_0123456789abcdef0123', now(), now(), 5, 1)
                """)
        }
        let amqp = try await AMQPConnection.connect(AMQPConfiguration(endpoints: [endpoint]))
        try await Topology.declareExchanges(on: amqp)
        let ordersQueue = "bench.edge.orders"
        try await amqp.declareQueue(ordersQueue)
        try await amqp.purgeQueue(ordersQueue)
        // The accepted orders go to this one queue, as the C loop's messages do: a depot.orders
        // left in the vhost by a run of Depot would take a second copy of each (and its backlog
        // grows across runs), which the broker pays for.
        _ = try? await amqp.deleteQueue("depot.orders")
        try await amqp.bindQueue(ordersQueue, exchange: Exchanges.commands, routingKey: MessageType.orderPlace.rawValue)

        let secret = "bench-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"
        let authority = await TokenAuthority(secret: secret)
        let token = try await authority.issue(subject: "bench-customer", role: .customer, ttl: .seconds(3600))
        var logger = Logger(label: "depot.bench.edge")
        logger.logLevel = .warning
        let constant = ConstantBody()
        let application = EdgeServer.application(
            configuration: EdgeConfiguration(
                host: "127.0.0.1", port: port, confirmTimeout: .seconds(5), rateLimit: nil,
                listenConfiguration: try PostgresConfiguration(url: benchURL)),
            publisher: MessagePublisher(amqp: amqp), primary: primary, read: primary, authority: authority,
            metrics: Self.metricsRegistry, logger: logger,
            benchmarkConstant: { constant.text })

        var rows: [(String, WrkResult, String, WrkResult)] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.runService() }
            // Wait for the server, then make the constant exactly as long as the order view.
            var view = ""
            for _ in 0..<100 {
                if let text = try? runProcess(
                    "/usr/bin/curl", ["-fs", "-H", "Authorization: Bearer \(token)", "\(base)/v1/orders/\(orderId)"]),
                    !text.isEmpty
                {
                    view = text
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            guard view.count > 10 else { throw ValidationError("the edge did not answer GET /v1/orders/{id}") }
            constant.text = #"{"x":""# + String(repeating: "x", count: view.utf8.count - 8) + #""}"#
            log("order view: \(view.utf8.count) bytes; constant: \(constant.text.utf8.count) bytes")

            var reads: [WrkResult] = []
            var trivial: [WrkResult] = []
            for round in 0..<rounds {
                for side in round % 2 == 0 ? ["trivial", "read"] : ["read", "trivial"] {
                    if side == "trivial" {
                        trivial.append(try wrk("\(base)/bench/constant", token: token))
                    } else {
                        reads.append(try wrk("\(base)/v1/orders/\(orderId)", token: token))
                    }
                }
                log(
                    "round \(round + 1): read \(Int(reads.last!.requestsPerSecond))/s, trivial \(Int(trivial.last!.requestsPerSecond))/s"
                )
            }
            rows.append(
                (
                    "GET /v1/orders/{id} (projection)", medianResult(reads),
                    "same-size constant, same server and middleware", medianResult(trivial)
                ))

            // Accepted orders: each one an idempotency row, a publish with its confirm, and a mark.
            var posts: [WrkResult] = []
            var publishes: [WrkResult] = []
            let script = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bench-orders.lua")
            try """
            counter = 0
            request = function()
                counter = counter + 1
                local key = string.format("%d-%d-%d", os.time(), math.random(1, 1000000000), counter)
                return wrk.format("POST", "/v1/orders", {
                    ["Authorization"] = "Bearer \(token)",
                    ["Content-Type"] = "application/json",
                    ["Idempotency-Key"] = key,
                }, '{"lines":[{"sku":"bench-1","quantity":1}],"payment":{"token":"tok_ok"}}')
            end
            """.write(to: script, atomically: true, encoding: .utf8)
            // Without Idempotency-Key the edge skips the database: a publish and its confirm.
            var unkeyed: [WrkResult] = []
            let unkeyedScript = FileManager.default.temporaryDirectory.appendingPathComponent(
                "depot-bench-orders-unkeyed.lua")
            try """
            wrk.method = "POST"
            wrk.body = '{"lines":[{"sku":"bench-1","quantity":1}],"payment":{"token":"tok_ok"}}'
            wrk.headers["Content-Type"] = "application/json"
            """.write(to: unkeyedScript, atomically: true, encoding: .utf8)
            for round in 0..<rounds {
                try await amqp.purgeQueue(ordersQueue)
                posts.append(try wrk("\(base)/v1/orders", token: token, script: script.path))
                try await amqp.purgeQueue(ordersQueue)
                unkeyed.append(try wrk("\(base)/v1/orders", token: token, script: unkeyedScript.path))
                let queue = "bench.edge.publish.\(round)"
                try await amqp.declareQueue(queue)
                let rate = try reference("publish", endpoint, queue, 64)
                try await amqp.deleteQueue(queue)
                publishes.append(WrkResult(requestsPerSecond: rate, p50: 0, p99: 0, non2xx: 0))
                log(
                    "round \(round + 1): POST /v1/orders \(Int(posts.last!.requestsPerSecond))/s (\(posts.last!.non2xx) not 2xx), without key \(Int(unkeyed.last!.requestsPerSecond))/s, C publish \(Int(rate))/s"
                )
            }
            rows.append(
                (
                    "POST /v1/orders accepted (202 after the confirm), Idempotency-Key", medianResult(posts),
                    "C loop: publish + confirm, 64 in flight", medianResult(publishes)
                ))
            rows.append(
                (
                    "POST /v1/orders accepted, no Idempotency-Key (no database)", medianResult(unkeyed),
                    "C loop: publish + confirm, 64 in flight", medianResult(publishes)
                ))
            group.cancelAll()
        }
        try await amqp.purgeQueue(ordersQueue)
        await amqp.close()
        await primary.shutdown()

        print("")
        print("| route | requests/s | p50 ms | p99 ms | reference | reference/s | ratio |")
        print("|---|---:|---:|---:|---|---:|---:|")
        for (name, result, reference, baseline) in rows {
            print(
                "| \(name) | \(Int(result.requestsPerSecond)) | \(String(format: "%.2f", result.p50)) | \(String(format: "%.2f", result.p99)) | \(reference) | \(Int(baseline.requestsPerSecond))\(baseline.p50 > 0 ? String(format: " (p50 %.2f, p99 %.2f ms)", baseline.p50, baseline.p99) : "") | \(String(format: "%.0f%%", 100 * result.requestsPerSecond / baseline.requestsPerSecond)) |"
            )
        }
        print("")
        print(
            "wrk -t2 -c64 -d\(wrkSeconds)s --latency, medians of \(rounds) rounds; every non-2xx answer counted: \(rows.map { $0.1.non2xx })"
        )
    }

    var wrkSeconds: Int { 8 }

    /// Drops and creates database `name`, migrates it with the release `depot` beside this
    /// binary, and returns its URL.
    func freshDatabase(_ name: String) async throws -> String {
        var components = URLComponents(string: databaseURL)!
        components.path = "/\(name)"
        let admin = PostgresPool(configuration: try PostgresConfiguration(url: databaseURL))
        try await admin.withConnection { connection in
            try await connection.execute("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)")
            try await connection.execute("CREATE DATABASE \(unescaped: name)")
        }
        await admin.shutdown()
        let depot = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "depot"
        ).path
        _ = try runProcess(depot, ["migrate", "--database-url", components.string!])
        return components.string!
    }

    func wrk(_ url: String, token: String, script: String? = nil) throws -> WrkResult {
        var arguments = ["-t2", "-c64", "-d\(wrkSeconds)s", "--latency", "-H", "Authorization: Bearer \(token)"]
        if let script { arguments += ["-s", script] }
        let output = try runProcess("/usr/bin/wrk", arguments + [url])
        func latency(_ label: String) -> Double {
            guard
                let line = output.split(separator: "\n").first(where: {
                    $0.trimmingCharacters(in: .whitespaces).hasPrefix(label)
                })
            else { return 0 }
            let value = line.split(separator: " ").last.map(String.init) ?? ""
            if value.hasSuffix("ms") { return Double(value.dropLast(2)) ?? 0 }
            if value.hasSuffix("us") { return (Double(value.dropLast(2)) ?? 0) / 1000 }
            if value.hasSuffix("s") { return (Double(value.dropLast(1)) ?? 0) * 1000 }
            return 0
        }
        let rate =
            output.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") }.flatMap {
                Double($0.split(separator: " ").last ?? "")
            } ?? 0
        let non2xx =
            output.split(separator: "\n").first { $0.contains("Non-2xx") }.flatMap {
                Int($0.split(separator: " ").last ?? "")
            } ?? 0
        return WrkResult(requestsPerSecond: rate, p50: latency("50%"), p99: latency("99%"), non2xx: non2xx)
    }

    func medianResult(_ results: [WrkResult]) -> WrkResult {
        let sorted = results.sorted { $0.requestsPerSecond < $1.requestsPerSecond }
        return sorted[sorted.count / 2]
    }
}

/// The trivial route's body, set once the order view's size is known.
final class ConstantBody: Sendable {
    private let value = Mutex("")
    var text: String {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
