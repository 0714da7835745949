import AMQP
import DepotModel
import Foundation
import Postgres
import Testing

/// The saga under SIGKILL and with replicas: one process per component, as in production.
/// Run alone (`--filter Disruption`, serialized) because they load both servers.
@Suite("Saga disruption", .serialized)
struct SagaDisruptionTests {
    static let components = ["orders", "inventory", "payments", "projector"]
    static let queues = components.map { "depot.\($0)" }
    static let skus = (1...8).map { "crash-\($0)" }

    @Test func killingComponentsRepeatedlyWhileOrdersFlowLosesAndDoublesNothing() async throws {
        let depot = try await IsolatedDepot.make(["DEPOT_PAYMENT_TIMEOUT": "120s"])
        var running: [String: Process] = [:]
        for component in Self.components { running[component] = try depot.start(component) }
        try await depot.waitUntilConsuming(Self.queues)
        let client = try await SagaClient(depot)
        try await client.createProducts(Dictionary(uniqueKeysWithValues: Self.skus.map { ($0, 120) }))

        // Kill a random component every 400 ms while 500 orders are placed over about 15 s, and restart it.
        let stop = StopFlag()
        async let kills: Int = {
            var kills = 0
            var generator = SystemRandomNumberGenerator()
            while !stop.isSet {
                try? await Task.sleep(for: .milliseconds(400))
                let component = Self.components.randomElement(using: &generator)!
                await depot.kill(running[component]!)
                kills += 1
                try? await Task.sleep(for: .milliseconds(100))
                running[component] = try? depot.start(component)
            }
            return kills
        }()
        let orders = try await client.placeMixedOrders(500, skus: Self.skus, concurrency: 2, pause: .milliseconds(60))
        try await Task.sleep(for: .seconds(2))
        stop.set()
        let killCount = await kills

        let allFinal = try await client.waitUntilAllFinal(orders, timeout: .seconds(180))
        #expect(allFinal, "logs: \(depot.logDirectory.path)")
        let violations = try await client.settledViolations(expectedOrders: orders.count)
        #expect(violations == [], "logs: \(depot.logDirectory.path)")
        let outcomes = try await client.pool.withConnection { connection in
            try await connection.query("SELECT status, count(*) FROM orders.orders GROUP BY 1 ORDER BY 1").map {
                "\(try $0.decode(0, as: String.self)) \(try $0.decode(1, as: Int.self))"
            }
        }
        // Batch boundaries were crossed by the kills: transactions of more than one message happened.
        let batched = try await client.batchedTransactions()
        print(
            "crash test: \(orders.count) orders, \(killCount) kills (SIGKILL), outcomes: \(outcomes.joined(separator: ", ")), violations: \(violations.count), transactions of several messages: \(batched)"
        )
        #expect(killCount >= 20)
        #expect(batched > 0)
        await client.close()
        await depot.tearDown()
    }

    @Test func twoReplicasOfEveryComponentKeepEveryGuarantee() async throws {
        let depot = try await IsolatedDepot.make(["DEPOT_PAYMENT_TIMEOUT": "120s"])
        for component in Self.components {
            try depot.start(component, label: "\(component)-1")
            try depot.start(component, label: "\(component)-2")
        }
        try await depot.waitUntilConsuming(Self.queues)
        let client = try await SagaClient(depot)
        try await client.createProducts(Dictionary(uniqueKeysWithValues: Self.skus.map { ($0, 60) }))
        let orders = try await client.placeMixedOrders(400, skus: Self.skus, concurrency: 16)
        let allFinal = try await client.waitUntilAllFinal(orders, timeout: .seconds(120))
        #expect(allFinal, "logs: \(depot.logDirectory.path)")
        let violations = try await client.settledViolations(expectedOrders: orders.count)
        #expect(violations == [], "logs: \(depot.logDirectory.path)")
        let batched = try await client.batchedTransactions()
        print("two replicas: \(orders.count) orders, transactions of several messages: \(batched)")
        #expect(batched > 0)
        // Both replicas of each service did work (competing consumers), except the projector's standby.
        let amqp = try await depot.connect()
        for queue in Self.queues {
            #expect(try await amqp.inspectQueue(queue).consumerCount == 2)
        }
        await amqp.close()
        await client.close()
        await depot.tearDown()
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
