import AMQP
import Foundation
import Postgres
import Testing

/// Tests that restart or cut the servers. `scripts/dev test` runs them alone, one at a time.
@Suite("Disruption: broker and database restarts", .serialized)
struct DisruptionTests {
    /// Publishes `count` messages with ids while `disrupt` runs, consuming on another connection;
    /// every id must arrive (duplicates are allowed: delivery is at least once).
    func publishAndConsumeThrough(count: Int, disrupt: @escaping @Sendable () async throws -> Void) async throws {
        let publisher = try await TestEnvironment.amqp(heartbeat: .seconds(2))
        let consumerConnection = try await TestEnvironment.amqp(heartbeat: .seconds(2))
        let queue = TestEnvironment.uniqueName("disruption")
        try await publisher.declareQueue(queue, durable: true)
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: 50)

        // Ten publishers, each in order with a short pause, so that the disruption lands mid-stream.
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { publishers in
                for lane in 0..<10 {
                    publishers.addTask {
                        for i in stride(from: lane, to: count, by: 10) {
                            try await publisher.publish(
                                OutgoingMessage("\(i)", properties: .persistentJSON(messageId: "\(i)")), exchange: "",
                                routingKey: queue)
                            try await Task.sleep(for: .milliseconds(2))
                        }
                    }
                }
                publishers.addTask {
                    try await Task.sleep(for: .milliseconds(150))
                    try await disrupt()
                }
                try await publishers.waitForAll()
            }
        }
        let received = try await withThrowingTaskGroup(of: Set<String>.self) { group in
            group.addTask {
                var seen = Set<String>()
                for try await delivery in consumer {
                    if let id = delivery.properties.messageId { seen.insert(id) }
                    delivery.ack()
                    if seen.count == count { break }
                }
                return seen
            }
            group.addTask {
                try await Task.sleep(for: .seconds(90))
                throw CancellationError()  // a lost message fails the test instead of hanging CI
            }
            let seen = try await group.next()!
            group.cancelAll()
            return seen
        }
        try await publishing.value
        #expect(received == Set((0..<count).map(String.init)))
        #expect(publisher.reconnections + consumerConnection.reconnections >= 1)
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

    @Test("after the broker application stops and starts, nothing is lost")
    func brokerRestart() async throws {
        try await publishAndConsumeThrough(count: 2_000) {
            try TestEnvironment.dev("restart-rabbitmq")
        }
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
