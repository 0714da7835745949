import AMQP
import Foundation
import Postgres
import Synchronization
import Testing

/// Tests that restart or cut the servers. `scripts/dev test` runs them alone, one at a time.
@Suite("Disruption: broker and database restarts", .serialized)
struct DisruptionTests {
    /// Publishes numbered messages from ten lanes until `disrupt` has run, both connections have
    /// reconnected, and at least `count` were sent; a consumer on the other connection must then
    /// see every id that was published (duplicates are allowed: delivery is at least once).
    func publishAndConsumeThrough(count: Int, disrupt: @escaping @Sendable () async throws -> Void) async throws {
        let publisher = try await TestEnvironment.amqp(heartbeat: .seconds(2))
        let consumerConnection = try await TestEnvironment.amqp(heartbeat: .seconds(2))
        let queue = TestEnvironment.uniqueName("disruption")
        try await publisher.declareQueue(queue, durable: true)
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: 50)

        let progress = ProgressBox()

        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        while let i = progress.state.withLock({ p -> Int? in
                            guard !(p.stop && p.next >= count) else { return nil }
                            defer { p.next += 1 }
                            return p.next
                        }) {
                            try await publisher.publish(
                                OutgoingMessage("\(i)", properties: .persistentJSON(messageId: "\(i)")), exchange: "",
                                routingKey: queue)
                            try await Task.sleep(for: .milliseconds(2))
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(150))
                    try await disrupt()
                    let recovered = try await eventually(timeout: .seconds(60)) {
                        publisher.reconnections >= 1 && consumerConnection.reconnections >= 1 && publisher.isConnected
                    }
                    #expect(recovered, "both connections should have reconnected")
                    try await Task.sleep(for: .milliseconds(200))  // publish some more on the new connection
                    progress.state.withLock { $0.stop = true }
                }
                try await group.waitForAll()
            }
            let total = progress.state.withLock { p in
                p.total = p.next
                return p.next
            }
            // A last message after every other is confirmed, so the consumer wakes to check the total.
            try await publisher.publish(
                OutgoingMessage("end", properties: .persistentJSON(messageId: "end")), exchange: "", routingKey: queue)
            return total
        }

        let received = try await withThrowingTaskGroup(of: Set<String>.self) { group in
            group.addTask {
                var seen = Set<String>()
                for try await delivery in consumer {
                    if let id = delivery.properties.messageId, id != "end" { seen.insert(id) }
                    delivery.ack()
                    if let total = progress.state.withLock({ $0.total }), seen.count >= total { break }
                }
                return seen
            }
            group.addTask {
                try await Task.sleep(for: .seconds(120))
                throw CancellationError()  // a lost message fails the test instead of hanging CI
            }
            let seen = try await group.next()!
            group.cancelAll()
            return seen
        }
        let total = try await publishing.value
        #expect(total >= count)
        #expect(received == Set((0..<total).map(String.init)))
        try await publisher.deleteQueue(queue)
        await publisher.close()
        await consumerConnection.close()
    }

    @Test("after rabbitmqctl close_connection the consumer resumes and publishes continue; nothing is lost")
    func closeConnection() async throws {
        try await publishAndConsumeThrough(count: 3_000) {
            let pids = try TestEnvironment.dev("rabbitmqctl", "list_connections", "pid", "--silent")
                .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("<") }
            #expect(!pids.isEmpty)
            for pid in pids { try TestEnvironment.dev("rabbitmqctl", "close_connection", pid, "disruption test") }
        }
    }

    @Test("after the broker application stops and starts, nothing is lost and transient topology is declared again")
    func brokerRestart() async throws {
        // Transient exchange, queue and binding vanish with the broker; the connection must declare them again.
        let amqp = try await TestEnvironment.amqp(heartbeat: .seconds(2))
        let exchange = TestEnvironment.uniqueName("transient-x")
        let queue = TestEnvironment.uniqueName("transient-q")
        try await amqp.declareExchange(exchange, type: .topic, durable: false)
        try await amqp.declareQueue(queue, durable: false)
        try await amqp.bindQueue(queue, exchange: exchange, routingKey: "order.*")

        try await publishAndConsumeThrough(count: 2_000) {
            try TestEnvironment.dev("restart-rabbitmq")
        }

        #expect(try await eventually(timeout: .seconds(20)) { amqp.isConnected && amqp.reconnections >= 1 })
        #expect(try await amqp.exchangeExists(exchange))
        try await amqp.publish(
            OutgoingMessage("{}", properties: .init(messageId: "after-restart")), exchange: exchange,
            routingKey: "order.placed",
            mandatory: true)
        #expect(try await amqp.inspectQueue(queue).messageCount == 1)
        try await amqp.deleteQueue(queue)
        try await amqp.deleteExchange(exchange)
        await amqp.close()
    }

    @Test("a publish the broker cannot confirm in time throws .timeout, and publishing resumes after")
    func confirmTimeout() async throws {
        let amqp = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("blocked")
        try await amqp.declareQueue(queue)
        // A memory alarm makes the broker block publishers: no confirm can come.
        try TestEnvironment.dev("rabbitmqctl", "set_vm_memory_high_watermark", "0")
        do {
            let started = ContinuousClock.now
            await #expect {
                try await amqp.publish(
                    OutgoingMessage("held"), exchange: "", routingKey: queue, timeout: .milliseconds(500))
            } throws: { ($0 as? AMQPError)?.code == .timeout }
            #expect(ContinuousClock.now - started < .seconds(3))
        }
        try TestEnvironment.dev("rabbitmqctl", "set_vm_memory_high_watermark", "0.4")
        try await amqp.publish(OutgoingMessage("after"), exchange: "", routingKey: queue, timeout: .seconds(10))
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test("a listener reconnects after the database restarts, says it may have missed some, and hears again")
    func listenerAfterRestart() async throws {
        let pool = try await TestEnvironment.postgres()
        let channel = "test_" + UUID().uuidString.prefix(8).lowercased()
        var iterator = PostgresNotifications(configuration: pool.configuration, channels: [channel]).makeAsyncIterator()
        #expect(await iterator.next()?.mayHaveMissedNotifications == true)
        try TestEnvironment.dev("restart-postgres")
        #expect(await iterator.next()?.mayHaveMissedNotifications == true)
        // The pool checks connections idle for more than 250 ms; this one was used just before the restart.
        try await Task.sleep(for: .milliseconds(300))
        try await pool.withConnection { try await $0.execute("SELECT pg_notify(\(channel), 'back')") }
        #expect(await iterator.next()?.payload == "back")
        await pool.shutdown()
    }

    @Test("a query after the database restarts succeeds on a fresh connection")
    func databaseRestart() async throws {
        let pool = try await TestEnvironment.postgres(maxConnections: 2)
        let before = try await pool.withConnection { try await $0.query("SELECT pg_backend_pid()") }
        let pidBefore = try before[0].decode(0, as: Int.self)
        try TestEnvironment.dev("restart-postgres")
        try await Task.sleep(for: .milliseconds(300))
        let after = try await pool.withConnection { try await $0.query("SELECT pg_backend_pid()") }
        #expect(try after[0].decode(0, as: Int.self) != pidBefore)
        await pool.shutdown()
    }
}

private struct Progress {
    var next = 0
    var stop = false
    var total: Int?
}

private final class ProgressBox: Sendable {
    let state = Mutex(Progress())
}
