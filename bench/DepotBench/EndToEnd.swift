import AMQP
import ArgumentParser
import DepotModel
import Foundation
import Messaging
import Postgres
import Synchronization

/// The end-to-end benchmark: orders per second from `order.place` to `order.confirmed`, with
/// every guarantee on, against the raw ceiling of this machine for the same work per order.
extension DepotBench {
    /// Confirmed publishes per order: order.place, order.placed, stock.reserved, payment.requested, payment.settled, order.confirmed.
    static let publishesPerOrder = 6.0
    /// Deliveries consumed and acked per order: orders 3, inventory 2, payments 1, projector 5, the bench's own 1.
    static let deliveriesPerOrder = 12.0
    /// Commits per order: one per handled delivery (6) and the simulated provider's two writes; the
    /// relays' and the projector's commits are batched and not counted.
    static let commitsPerOrder = 8.0

    struct EndToEndLine {
        var layout: String
        var concurrency: Int
        var ordersPerSecond: Double
        var p50: Double
        var p99: Double
        /// CPU of depot, PostgreSQL and RabbitMQ over the measurement, per order.
        var cpuMillisecondsPerOrder: Double
    }

    func endToEnd() async throws {
        let endpoint = try AMQPEndpoint.list(amqpURL)[0]
        // The raw ceiling, measured now: C loops on librabbitmq and pgbench, same sizes as one order's messages.
        log("reference: C publish/consume loops and pgbench")
        let admin = try await AMQPConnection.connect(AMQPConfiguration(endpoints: [endpoint]))
        let queue = "bench.ceiling.\(UUID().uuidString.prefix(8).lowercased())"
        try await admin.declareQueue(queue)
        let publishRate = try reference("publish", endpoint, queue, window)
        let consumeRate = try reference("consume", endpoint, queue, Int(prefetch))
        try await admin.deleteQueue(queue)
        let commitRate = try await pgbenchInsertRate(clients: 16)
        let ceiling =
            1
            / (Self.publishesPerOrder / publishRate + Self.deliveriesPerOrder / consumeRate + Self.commitsPerOrder
                / commitRate)
        log(
            "ceiling: publish \(Int(publishRate))/s, consume \(Int(consumeRate))/s, commit \(Int(commitRate))/s → \(Int(ceiling)) orders/s"
        )

        var lines: [EndToEndLine] = []
        for layout in ["depot all", "one process per component"] {
            let processes = try await startDepot(layout: layout, admin: admin)
            defer { for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) } }
            lines += try await measureOrders(layout: layout, admin: admin)
            for process in processes { kill(process.processIdentifier, SIGTERM) }
            for process in processes { process.waitUntilExit() }
        }
        await admin.close()

        print("")
        print(
            "| layout | orders in flight | orders/s | p50 ms | p99 ms | raw ceiling orders/s | ratio | CPU ms/order |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for line in lines {
            print(
                "| \(line.layout) | \(line.concurrency) | \(Int(line.ordersPerSecond)) | \(String(format: "%.1f", line.p50)) | \(String(format: "%.1f", line.p99)) | \(Int(ceiling)) | \(String(format: "%.0f%%", 100 * line.ordersPerSecond / ceiling)) | \(String(format: "%.2f", line.cpuMillisecondsPerOrder)) |"
            )
        }
        print("")
        print(
            "ceiling = 1 / (\(Int(Self.publishesPerOrder)) confirmed publishes / \(Int(publishRate)) per s (C loop) + \(Int(Self.deliveriesPerOrder)) consumes / \(Int(consumeRate)) per s (C loop) + \(Int(Self.commitsPerOrder)) commits / \(Int(commitRate)) per s (pgbench, 16 clients))"
        )
        print(
            "CPU ms/order: utime+stime of every depot, postgres and beam.smp process (and children) over the measurement, per order"
        )
    }

    var benchDatabaseURL: String {
        var components = URLComponents(string: databaseURL)!
        components.path = "/depot_bench_e2e"
        return components.string!
    }

    /// A fresh database and empty Depot queues, then the components as release-built processes.
    func startDepot(layout: String, admin: AMQPConnection) async throws -> [Process] {
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: databaseURL))
        try await pool.withConnection { connection in
            try await connection.execute("DROP DATABASE IF EXISTS depot_bench_e2e WITH (FORCE)")
            try await connection.execute("CREATE DATABASE depot_bench_e2e")
        }
        await pool.shutdown()
        for component in ["orders", "inventory", "payments", "projector"] {
            for suffix in ["", ".dead", ".retry.500ms", ".retry.2s", ".retry.10s", ".retry.30s", ".retry.60s"] {
                _ = try? await admin.deleteQueue("depot.\(component)\(suffix)")
            }
        }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "depot")
        var environment = ProcessInfo.processInfo.environment
        environment["DEPOT_DATABASE_URL"] = benchDatabaseURL
        environment["DEPOT_LOG_LEVEL"] = "warning"
        // Migrate once before several processes start.
        let migrate = Process()
        migrate.executableURL = binary
        migrate.arguments = ["migrate"]
        migrate.environment = environment
        migrate.standardOutput = FileHandle.nullDevice
        try migrate.run()
        migrate.waitUntilExit()
        let commands = layout == "depot all" ? [["all"]] : [["orders"], ["inventory"], ["payments"], ["projector"]]
        var processes: [Process] = []
        for arguments in commands {
            let process = Process()
            process.executableURL = binary
            process.arguments = arguments
            process.environment = environment
            process.standardOutput = FileHandle.standardError
            process.standardError = FileHandle.standardError
            try process.run()
            processes.append(process)
        }
        let deadline = ContinuousClock.now + .seconds(30)
        for queue in ["depot.orders", "depot.inventory", "depot.payments", "depot.projector"] {
            while (try? await admin.inspectQueue(queue).consumerCount) ?? 0 == 0 {
                guard ContinuousClock.now < deadline else {
                    throw ValidationError("\(layout): \(queue) has no consumer after 30 s")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return processes
    }

    func measureOrders(layout: String, admin: AMQPConnection) async throws -> [EndToEndLine] {
        let publisher = MessagePublisher(amqp: admin)
        let skus = (0..<20).map { "bench-\($0)" }
        for sku in skus {
            try await publisher.publish(
                Envelope(
                    type: .productCreate, correlationId: sku, causationId: nil,
                    data: CreateProduct(sku: sku, name: sku, priceCents: 100, stock: 1_000_000_000)))
        }
        let tap = "bench.tap.\(UUID().uuidString.prefix(8).lowercased())"
        try await admin.declareQueue(tap, durable: false, exclusive: true, autoDelete: true)
        for type in [MessageType.orderConfirmed, .orderRejected, .orderCancelled] {
            try await admin.bindQueue(tap, exchange: Exchanges.events, routingKey: type.rawValue)
        }
        let waiters = OrderWaiters()
        let consumer = try await admin.consume(queue: tap, prefetch: 1000)
        return try await withThrowingTaskGroup(of: [EndToEndLine]?.self) { group in
            group.addTask {
                for try await delivery in consumer {
                    delivery.ack()
                    if let id = delivery.properties.correlationId.flatMap(UUID.init(uuidString:)) {
                        waiters.finish(id, confirmed: delivery.routingKey == MessageType.orderConfirmed.rawValue)
                    }
                }
                return nil
            }
            let concurrencies = endToEndConcurrency.split(separator: ",").compactMap { Int($0) }
            group.addTask {
                _ = try await Self.runOrders(
                    count: 300, concurrency: 16, skus: skus, publisher: publisher, waiters: waiters)  // warm-up
                var lines: [EndToEndLine] = []
                let cpu = ProcessCPU.besideBench
                for concurrency in concurrencies {
                    let count = max(1_000, concurrency * 25)
                    let cpuBefore = cpu.sample()
                    let (rate, latencies) = try await Self.runOrders(
                        count: count, concurrency: concurrency, skus: skus, publisher: publisher, waiters: waiters)
                    let cpuUsed = cpu.sample() - cpuBefore
                    let sorted = latencies.sorted()
                    let line = EndToEndLine(
                        layout: layout, concurrency: concurrency, ordersPerSecond: rate,
                        p50: sorted[sorted.count / 2] * 1000,
                        p99: sorted[min(sorted.count - 1, sorted.count * 99 / 100)] * 1000,
                        cpuMillisecondsPerOrder: 1000 * cpuUsed.total / Double(count))
                    FileHandle.standardError.write(
                        Data(
                            "[bench] \(layout), \(concurrency) in flight: \(Int(rate)) orders/s, p50 \(line.p50) ms, p99 \(line.p99) ms, CPU ms/order \(cpuUsed.millisecondsByGroup(per: Double(count)))\n"
                                .utf8))
                    lines.append(line)
                }
                return lines
            }
            let lines = try await group.next()!!
            await consumer.cancel()
            group.cancelAll()
            return lines
        }
    }

    /// Closed loop: `concurrency` customers, each placing its next order when the last is confirmed.
    static func runOrders(
        count: Int, concurrency: Int, skus: [String], publisher: MessagePublisher, waiters: OrderWaiters
    ) async throws -> (Double, [Double]) {
        let next = OrderCounter()
        let started = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    while true {
                        let index = next.value.add(1, ordering: .relaxed).oldValue
                        guard index < count else { return latencies }
                        let id = UUID()
                        let placed = ContinuousClock.now
                        let order = PlaceOrder(
                            orderId: id, customerId: "bench",
                            lines: [OrderLine(sku: skus[index % skus.count], quantity: 1)],
                            payment: .init(token: "tok_ok"))
                        let confirmed = try await waiters.wait(for: id) {
                            try await publisher.publish(
                                Envelope(
                                    type: .orderPlace, correlationId: id.canonicalText, causationId: nil, data: order))
                        }
                        guard confirmed else { throw ValidationError("order \(id) did not confirm") }
                        latencies.append(elapsedSeconds(since: placed))
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        return (Double(count) / elapsedSeconds(since: started), latencies)
    }

    func pgbenchInsertRate(clients: Int) async throws -> Double {
        try await prepareInsertTable()
        return try pgbench(script: try writePlainInsertScript().path, clients: clients)
    }
}

/// Order ids waiting for their final event; an event that arrives first is kept for its waiter.
final class OrderWaiters: Sendable {
    private struct State {
        var waiting: [UUID: CheckedContinuation<Bool, Never>] = [:]
        var arrived: [UUID: Bool] = [:]
    }
    private let state = Mutex(State())

    func wait(for id: UUID, after start: () async throws -> Void) async throws -> Bool {
        try await start()
        return await withCheckedContinuation { continuation in
            let early = state.withLock { state -> Bool? in
                if let confirmed = state.arrived.removeValue(forKey: id) { return confirmed }
                state.waiting[id] = continuation
                return nil
            }
            if let early { continuation.resume(returning: early) }
        }
    }

    func finish(_ id: UUID, confirmed: Bool) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let waiter = state.waiting.removeValue(forKey: id) { return waiter }
            state.arrived[id] = confirmed
            return nil
        }
        waiter?.resume(returning: confirmed)
    }
}

func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

final class OrderCounter: Sendable {
    let value = Atomic(0)
}
