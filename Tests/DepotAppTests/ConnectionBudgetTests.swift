import Testing

@testable import DepotApp

@Suite("Connection budget")
struct ConnectionBudgetTests {
    @Test("by default a worker or an edge holds 8 connections, listeners included, and depot all 40")
    func defaults() throws {
        for component in Component.allCases {
            let budget = try ConnectionBudget.plan(
                components: [component], edge: false, separateReadURL: false, size: nil)
            #expect(budget.total == 8)
            #expect(budget.primary + budget.listeners + budget.read + budget.provider == 8, "\(component): \(budget)")
        }
        let edge = try ConnectionBudget.plan(components: [], edge: true, separateReadURL: true, size: nil)
        #expect(
            edge.total == 8 && edge.listeners == 1 && edge.read >= 1 && edge.primary + edge.read + edge.listeners == 8)
        let all = try ConnectionBudget.plan(
            components: Component.allCases, edge: true, separateReadURL: false, size: nil)
        #expect(all.total == 40 && all.read == 0 && all.primary + all.listeners + all.provider == 40)
    }

    @Test("two replicas of every worker and two edges fit a stock PostgreSQL (100, 3 reserved) with room for operators")
    func stockServerFits() throws {
        var total = 0
        for component in Component.allCases {
            total +=
                2
                * (try ConnectionBudget.plan(components: [component], edge: false, separateReadURL: false, size: nil)
                    .total)
        }
        total += 2 * (try ConnectionBudget.plan(components: [], edge: true, separateReadURL: true, size: nil).total)
        #expect(total == 80)
        #expect(total <= 97 - 10)
    }

    @Test("handler concurrency follows from the pool, never above 8 nor below 1")
    func concurrencyFollowsThePool() throws {
        let small = try ConnectionBudget.plan(components: [.orders], edge: false, separateReadURL: false, size: 3)
        let usual = try ConnectionBudget.plan(components: [.orders], edge: false, separateReadURL: false, size: 8)
        let large = try ConnectionBudget.plan(components: [.orders], edge: false, separateReadURL: false, size: 200)
        let all = try ConnectionBudget.plan(
            components: Component.allCases, edge: true, separateReadURL: false, size: 12)
        #expect(small.handlerConcurrency == 2 && usual.handlerConcurrency == 7 && large.handlerConcurrency == 8)
        #expect(all.handlerConcurrency >= 1 && all.handlerConcurrency * 3 <= all.primary)
    }

    @Test("a size below what the process needs to work is refused, naming the setting")
    func tooSmall() {
        #expect(throws: ConfigurationError.self) {
            try ConnectionBudget.plan(components: [.payments], edge: false, separateReadURL: false, size: 3)
        }
        do {
            _ = try ConnectionBudget.plan(components: Component.allCases, edge: true, separateReadURL: true, size: 5)
            Issue.record("accepted 5 connections for depot all")
        } catch {
            #expect(error.setting == "DEPOT_DATABASE_POOL_SIZE")
            #expect(error.problem.contains("at least"))
        }
    }
}

@Suite("Process plan")
struct ProcessPlanTests {
    @Test("a process is named for application_name by what it runs")
    func names() {
        let edge = ProcessPlan.EdgePart(jwtSecret: String(repeating: "k", count: 32))
        #expect(ProcessPlan(components: Component.allCases, edge: edge).name == "all")
        #expect(ProcessPlan(components: [], edge: edge).name == "edge")
        #expect(ProcessPlan(components: [.payments]).name == "payments")
        #expect(ProcessPlan(components: [.orders, .inventory]).name == "orders+inventory")
    }

    @Test("the edge gets a read pool only when the read URL differs from the primary")
    func readPool() throws {
        let edge = ProcessPlan.EdgePart(jwtSecret: String(repeating: "k", count: 32))
        let same = try Settings.resolve(environment: [:])
        let replica = try Settings.resolve(environment: [
            "DEPOT_DATABASE_READ_URL": "postgres://depot@127.0.0.1:5433/depot"
        ])
        #expect(try ProcessPlan(components: [], edge: edge).budget(same).read == 0)
        #expect(try ProcessPlan(components: [], edge: edge).budget(replica).read > 0)
        #expect(try ProcessPlan(components: [.orders]).budget(replica).read == 0)
    }
}
