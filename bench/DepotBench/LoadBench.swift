import AMQP
import ArgumentParser
import DepotModel
import Dispatch
import Edge
import Foundation
import Messaging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The open-loop load test: orders through the edge at fixed offered rates. Request i leaves at
/// t0 + i/rate whatever the earlier answers do, so a slow system meets a growing backlog instead
/// of a slower client (a closed loop hides that). The rates are 25, 50, 80 and 100% of the highest
/// rate whose backlog does not grow, found first by a ramp unless `--load-max` gives it.
extension DepotBench {
    static let loadShares = [0.25, 0.5, 0.8, 1.0]
    static let loadEdgePort = 18_091
    static let rampStepSeconds = 10.0
    static let idleSeconds = 5.0
    /// Customers the orders are spread over, so the edge's default per-caller rate limit
    /// (100/s) is not what a step measures.
    static let loadCustomers = 100

    struct LoadStep {
        var rate: Double
        var seconds: Double
        var offered: Double
        var accepted: Double
        var confirmed: Double
        var latencies: [Double]
        var failures: [String: Int]
        var rejected: Int
        var backlogMiddle: Int
        var backlogEnd: Int
        var lags: [Double]
        var drained: Bool
        var cpu: ProcessCPU.Sample
        var confirmedInWindow: Int
        var benchCPUSeconds: Double

        var nonAccepted: Int { failures.values.reduce(0, +) }
        var cpuMillisecondsPerOrder: Double { 1000 * cpu.total / Double(max(confirmedInWindow, 1)) }

        /// Why this rate is beyond the maximum, or nil when the system keeps up.
        var shortfall: String? {
            if lags.percentile(0.99) > 0.05 {
                return "the sender fell behind (lag p99 \(Int(lags.percentile(0.99) * 1000)) ms)"
            }
            if Double(nonAccepted) > 0.01 * offered * seconds { return "\(nonAccepted) requests not accepted" }
            if confirmed < 0.95 * offered {
                return "confirmed \(Int(confirmed))/s of \(Int(offered))/s offered"
            }
            // Little's law: a system that keeps up holds a steady backlog; one that does not adds
            // (offered - capacity) orders a second. 5% of the rate over the second half is the bar.
            if Double(backlogEnd - backlogMiddle) > max(0.05 * rate * seconds / 2, 5) {
                return "backlog grew from \(backlogMiddle) to \(backlogEnd)"
            }
            return nil
        }
    }

    func loadBenchmark() async throws {
        let endpoint = try AMQPEndpoint.list(amqpURL)[0]
        let admin = try await AMQPConnection.connect(AMQPConfiguration(endpoints: [endpoint]))
        let secret = "bench-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"
        // startDepot hands this process's environment to `depot all`: that is how its edge
        // gets a known port and key.
        setenv("DEPOT_HTTP_PORT", "\(Self.loadEdgePort)", 1)
        setenv("DEPOT_JWT_SECRET", secret, 1)
        let processes = try await startDepot(layout: "depot all", admin: admin)
        unsetenv("DEPOT_HTTP_PORT")
        unsetenv("DEPOT_JWT_SECRET")
        defer { for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) } }

        let authority = await TokenAuthority(secret: secret)
        var tokens: [String] = []
        for customer in 0..<Self.loadCustomers {
            tokens.append(try await authority.issue(subject: "load-\(customer)", role: .customer, ttl: .seconds(7200)))
        }
        let skus = (0..<20).map { "bench-\($0)" }
        let publisher = MessagePublisher(amqp: admin)
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
        try await waitForEdge(port: Self.loadEdgePort)

        let ledger = LoadLedger()
        let sender = LoadSender(port: Self.loadEdgePort, tokens: tokens, skus: skus, ledger: ledger)
        let consumer = try await admin.consume(queue: tap, prefetch: 1000)
        let cpu = ProcessCPU.besideBench
        var ramp: [LoadStep] = []
        var steps: [LoadStep] = []
        var maximum = 0.0
        var idle = ProcessCPU.Sample()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await delivery in consumer {
                    delivery.ack()
                    if let id = delivery.properties.correlationId.flatMap(UUID.init(uuidString:)) {
                        ledger.finished(
                            id, confirmed: delivery.routingKey == MessageType.orderConfirmed.rawValue, at: .now)
                    }
                }
            }
            // Opened before the clock starts; more are opened whenever every one is busy.
            sender.open(connections: 64)
            let warmUp = try await runLoadStep(rate: 20, seconds: 3, sender: sender, ledger: ledger, cpu: cpu)
            guard warmUp.drained, warmUp.nonAccepted == 0, warmUp.latencies.count == Int(20 * 3.0) else {
                throw ValidationError(
                    "warm-up: \(warmUp.latencies.count) of 60 orders confirmed, not accepted: \(warmUp.failures), rejected: \(warmUp.rejected)"
                )
            }
            log("warm-up: 60 orders confirmed, p50 \(Int(warmUp.latencies.percentile(0.5) * 1000)) ms")
            // What the processes burn with no orders, to read the low rates' CPU per order against.
            let idleBefore = cpu.sample()
            try await Task.sleep(for: .seconds(Self.idleSeconds))
            idle = cpu.sample() - idleBefore
            log("idle CPU, ms per second: \(idle.millisecondsByGroup(per: Self.idleSeconds))")

            if let loadMax {
                maximum = loadMax
            } else {
                (maximum, ramp) = try await findMaximum(sender: sender, ledger: ledger, cpu: cpu)
            }
            for share in Self.loadShares {
                steps.append(
                    try await runLoadStep(
                        rate: maximum * share, seconds: Double(loadSeconds), sender: sender, ledger: ledger, cpu: cpu))
            }
            await consumer.cancel()
            group.cancelAll()
        }
        let connections = sender.connectionCount
        sender.close()
        await admin.close()
        for process in processes { kill(process.processIdentifier, SIGTERM) }
        for process in processes { process.waitUntilExit() }

        printLoadTable(steps: steps, ramp: ramp, maximum: maximum, idle: idle, connections: connections)
    }

    /// Doubles the rate from 25/s until a step falls short, then bisects between the last rate
    /// that kept up and the first that did not, to within 10%.
    func findMaximum(sender: LoadSender, ledger: LoadLedger, cpu: ProcessCPU) async throws -> (Double, [LoadStep]) {
        var ramp: [LoadStep] = []
        var kept: Double?
        var fell: Double?
        var rate = 25.0
        while true {
            let step = try await runLoadStep(
                rate: rate, seconds: Self.rampStepSeconds, sender: sender, ledger: ledger, cpu: cpu)
            ramp.append(step)
            log("ramp \(Int(rate))/s: \(step.shortfall ?? "keeps up")")
            if step.shortfall == nil { kept = rate } else { fell = rate }
            switch (kept, fell) {
            case (_, nil):
                guard rate < 5_000 else { return (rate, ramp) }
                rate *= 2
            case (nil, _):
                guard rate > 2 else { throw ValidationError("the system does not keep up with 2 orders/s") }
                rate /= 2
            case (let kept?, let fell?):
                if fell - kept <= max(0.1 * kept, 2) { return (kept, ramp) }
                rate = ((kept + fell) / 2).rounded()
            }
        }
    }

    /// One step at a constant offered rate, then a wait until its orders are final, so the next
    /// step starts without a backlog.
    func runLoadStep(rate: Double, seconds: Double, sender: LoadSender, ledger: LoadLedger, cpu: ProcessCPU)
        async throws -> LoadStep
    {
        let step = ledger.newStep()
        let count = Int((rate * seconds).rounded())
        let start = ContinuousClock.now + .milliseconds(20)
        let benchBefore = Self.ownCPUSeconds()
        let cpuBefore = cpu.sample()
        async let dispatched: Void = sender.send(count: count, rate: rate, step: step, start: start)
        try await Task.sleep(until: start + .seconds(seconds / 2), clock: .continuous)
        let backlogMiddle = ledger.backlog
        await dispatched
        // The window ends at the scheduled end, or when the last request left if that was later.
        var end = start + .seconds(seconds)
        while ledger.record(step).sent < count { try await Task.sleep(for: .milliseconds(5)) }
        end = max(end, ledger.record(step).lastSent ?? end)
        try await Task.sleep(until: end, clock: .continuous)
        let cpuUsed = cpu.sample() - cpuBefore
        let benchUsed = Self.ownCPUSeconds() - benchBefore
        let backlogEnd = ledger.backlog
        let record = ledger.record(step)
        let windowSeconds = elapsedSeconds(from: start, to: end)
        let confirmedInWindow = ledger.confirmations(from: start, to: end)

        let deadline = ContinuousClock.now + .seconds(60)
        var drained = false
        while ContinuousClock.now < deadline {
            let record = ledger.record(step)
            if record.answered == count, record.finished == record.accepted {
                drained = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let final = ledger.record(step)
        let result = LoadStep(
            rate: rate, seconds: windowSeconds, offered: Double(count) / windowSeconds,
            accepted: Double(record.accepted) / windowSeconds, confirmed: Double(confirmedInWindow) / windowSeconds,
            latencies: final.latencies.sorted(), failures: final.failures, rejected: final.rejected,
            backlogMiddle: backlogMiddle, backlogEnd: backlogEnd, lags: final.lags.sorted(), drained: drained,
            cpu: cpuUsed, confirmedInWindow: confirmedInWindow, benchCPUSeconds: benchUsed)
        log(
            "\(String(format: "%.1f", rate))/s for \(Int(seconds)) s: confirmed \(String(format: "%.1f", result.confirmed))/s, p50 \(Int(result.latencies.percentile(0.5) * 1000)) ms, p99 \(Int(result.latencies.percentile(0.99) * 1000)) ms, backlog \(backlogMiddle) → \(backlogEnd), lag max \(String(format: "%.1f", (result.lags.last ?? 0) * 1000)) ms, CPU \(String(format: "%.2f", result.cpuMillisecondsPerOrder)) ms/order (\(cpuUsed.millisecondsByGroup(per: Double(confirmedInWindow))))\(drained ? "" : ", NOT drained after 60 s")"
        )
        return result
    }

    func waitForEdge(port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let connection = try? HTTPConnection(port: port),
                (try? connection.exchange(
                    Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
                ).status) == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("the edge did not answer GET /healthz on port \(port) within 30 s")
    }

    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    func printLoadTable(steps: [LoadStep], ramp: [LoadStep], maximum: Double, idle: ProcessCPU.Sample, connections: Int)
    {
        func ms(_ seconds: Double) -> String { String(format: "%.1f", seconds * 1000) }
        print("")
        print(
            "| load | offered/s | accepted/s | confirmed/s | p50 ms | p99 ms | max ms | non-202 | backlog mid → end | sender lag p99 / max ms | CPU ms/order |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for (share, step) in zip(Self.loadShares, steps) {
            let failures =
                step.failures.isEmpty
                ? "0"
                : "\(step.nonAccepted) ("
                    + step.failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                    .joined(separator: ", ") + ")"
            print(
                "| \(Int(share * 100))% | \(String(format: "%.1f", step.offered)) | \(String(format: "%.1f", step.accepted)) | \(String(format: "%.1f", step.confirmed)) | \(ms(step.latencies.percentile(0.5))) | \(ms(step.latencies.percentile(0.99))) | \(ms(step.latencies.last ?? 0)) | \(failures) | \(step.backlogMiddle) → \(step.backlogEnd) | \(ms(step.lags.percentile(0.99))) / \(ms(step.lags.last ?? 0)) | \(String(format: "%.2f", step.cpuMillisecondsPerOrder)) |"
            )
        }
        print("")
        print("command: \(CommandLine.arguments.joined(separator: " "))")
        if ramp.isEmpty {
            print("maximum: \(String(format: "%.0f", maximum)) orders/s, given by --load-max")
        } else {
            let trail = ramp.map {
                "\(Int($0.rate)) \($0.shortfall == nil ? "kept up" : "fell short (\($0.shortfall!))")"
            }
            print(
                "maximum: \(String(format: "%.0f", maximum)) orders/s, the highest rate that kept up in a ramp of \(Int(Self.rampStepSeconds)) s steps: \(trail.joined(separator: "; "))"
            )
        }
        print(
            "CPU ms/order by process: "
                + zip(Self.loadShares, steps).map {
                    "\(Int($0 * 100))%: \($1.cpu.millisecondsByGroup(per: Double($1.confirmedInWindow))); the bench itself \(String(format: "%.2f", 1000 * $1.benchCPUSeconds / Double(max($1.confirmedInWindow, 1))))"
                }.joined(separator: " | "))
        print(
            "CPU with no orders (\(Int(Self.idleSeconds)) s after the warm-up), ms per second: \(idle.millisecondsByGroup(per: Self.idleSeconds))"
        )
        let unfinished = steps.filter { !$0.drained }.count
        let rejected = steps.map(\.rejected).reduce(0, +)
        print(
            "open loop, \(loadSeconds) s per rate: POST /v1/orders over HTTP/1.1 keep-alive (\(connections) connections opened), \(Self.loadCustomers) customers, `depot all` with its default settings; latency from the POST leaving to order.confirmed on a tap queue; accepted/s and confirmed/s count 202s and confirmations inside the window; backlog = sent, not yet confirmed or refused, at half time and at the end; CPU = utime+stime of every depot, postgres and beam.smp process (and children) over the window, per order confirmed in it"
                + (rejected > 0 ? "; \(rejected) orders rejected or cancelled" : "")
                + (unfinished > 0 ? "; \(unfinished) rates still had orders unconfirmed 60 s after their window" : ""))
    }
}

extension [Double] {
    /// The value at `fraction` of a sorted array, 0 when empty.
    func percentile(_ fraction: Double) -> Double {
        isEmpty ? 0 : self[Swift.min(count - 1, Int(Double(count) * fraction))]
    }
}

func elapsedSeconds(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Double {
    let elapsed = end - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// What the load test saw, from the sender's threads and the tap: per step its requests and
/// answers, and per order its send time until its final event arrives. A final event may come
/// before the 202 that names its order has been read, so either side can arrive first.
final class LoadLedger: Sendable {
    struct StepRecord: Sendable {
        var sent = 0
        var answered = 0
        var accepted = 0
        var finished = 0
        var rejected = 0
        var failures: [String: Int] = [:]
        var latencies: [Double] = []
        var lags: [Double] = []
        var lastSent: ContinuousClock.Instant?
    }

    private struct State {
        var steps: [StepRecord] = []
        var sent = 0
        var failed = 0
        var finished = 0
        var awaiting: [UUID: (sent: ContinuousClock.Instant, step: Int)] = [:]
        var finishedFirst: [UUID: (at: ContinuousClock.Instant, confirmed: Bool)] = [:]
        var confirmations: [ContinuousClock.Instant] = []

        mutating func settle(
            _ id: UUID, sent: ContinuousClock.Instant, step: Int, at: ContinuousClock.Instant, confirmed: Bool
        ) {
            finished += 1
            steps[step].finished += 1
            if confirmed {
                steps[step].latencies.append(elapsedSeconds(from: sent, to: at))
                confirmations.append(at)
            } else {
                steps[step].rejected += 1
            }
        }
    }

    private let state = Mutex(State())

    func newStep() -> Int {
        state.withLock { state in
            state.steps.append(StepRecord())
            return state.steps.count - 1
        }
    }

    func record(_ step: Int) -> StepRecord { state.withLock { $0.steps[step] } }

    /// Orders sent and neither refused nor final yet.
    var backlog: Int { state.withLock { $0.sent - $0.failed - $0.finished } }

    func confirmations(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> Int {
        state.withLock { $0.confirmations.count { $0 >= start && $0 <= end } }
    }

    func sent(step: Int, at instant: ContinuousClock.Instant, lag: Duration) {
        state.withLock { state in
            state.sent += 1
            state.steps[step].sent += 1
            state.steps[step].lags.append(
                Double(lag.components.seconds) + Double(lag.components.attoseconds) / 1e18)
            state.steps[step].lastSent = max(state.steps[step].lastSent ?? instant, instant)
        }
    }

    func accepted(_ id: UUID, step: Int, sent: ContinuousClock.Instant) {
        state.withLock { state in
            state.steps[step].answered += 1
            state.steps[step].accepted += 1
            if let early = state.finishedFirst.removeValue(forKey: id) {
                state.settle(id, sent: sent, step: step, at: early.at, confirmed: early.confirmed)
            } else {
                state.awaiting[id] = (sent, step)
            }
        }
    }

    func failed(step: Int, reason: String) {
        state.withLock { state in
            state.failed += 1
            state.steps[step].answered += 1
            state.steps[step].failures[reason, default: 0] += 1
        }
    }

    func finished(_ id: UUID, confirmed: Bool, at instant: ContinuousClock.Instant) {
        state.withLock { state in
            if let order = state.awaiting.removeValue(forKey: id) {
                state.settle(id, sent: order.sent, step: order.step, at: instant, confirmed: confirmed)
            } else {
                state.finishedFirst[id] = (instant, confirmed)
            }
        }
    }
}

/// Sends requests on the clock from threads of its own, each with one keep-alive connection and
/// blocking socket calls (never on the cooperative pool). A request waits for a connection only
/// when all of them are busy and `maxConnections` are open; its lag says so.
final class LoadSender: Sendable {
    struct Job {
        var index: Int
        var step: Int
        var scheduled: ContinuousClock.Instant
    }

    private struct Pool {
        var jobs: [Job] = []
        var next = 0
        var idle = 0
        var workers = 0
        var closed = false
    }

    let port: Int
    let tokens: [String]
    let skus: [String]
    let ledger: LoadLedger
    let maxConnections = 512
    /// Keys differ between runs, so a key never names an order of an earlier run.
    let runKey = UUID().uuidString.prefix(8).lowercased()
    private let pool = Mutex(Pool())
    private let wake = DispatchSemaphore(value: 0)

    init(port: Int, tokens: [String], skus: [String], ledger: LoadLedger) {
        self.port = port
        self.tokens = tokens
        self.skus = skus
        self.ledger = ledger
    }

    var connectionCount: Int { pool.withLock { $0.workers } }

    func open(connections: Int) {
        for _ in 0..<connections {
            pool.withLock { $0.workers += 1 }
            startWorker()
        }
    }

    /// Hands request i to a connection at `start` + i/`rate`; returns when the last is handed over.
    func send(count: Int, rate: Double, step: Int, start: ContinuousClock.Instant) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread { [self] in
                for index in 0..<count {
                    let scheduled = start + .seconds(Double(index) / rate)
                    Self.sleep(until: scheduled)
                    dispatch(Job(index: index, step: step, scheduled: scheduled))
                }
                continuation.resume()
            }.start()
        }
    }

    func close() {
        let workers = pool.withLock { pool in
            pool.closed = true
            return pool.workers
        }
        for _ in 0..<workers { wake.signal() }
    }

    private func dispatch(_ job: Job) {
        let spawn = pool.withLock { pool -> Bool in
            pool.jobs.append(job)
            // Jobs beyond the idle threads would wait: open another connection for this one.
            guard pool.jobs.count - pool.next > pool.idle, pool.workers < maxConnections else { return false }
            pool.workers += 1
            return true
        }
        if spawn { startWorker() }
        wake.signal()
    }

    private func startWorker() {
        Thread { [self] in work() }.start()
    }

    private func work() {
        var connection = try? HTTPConnection(port: port)
        let decoder = JSONDecoder()
        while true {
            pool.withLock { $0.idle += 1 }
            wake.wait()
            // Every signal stands for one job, or for closing.
            let job = pool.withLock { pool -> Job? in
                pool.idle -= 1
                guard !pool.closed else { return nil }
                defer {
                    pool.next += 1
                    if pool.next == pool.jobs.count {
                        pool.jobs.removeAll(keepingCapacity: true)
                        pool.next = 0
                    }
                }
                return pool.jobs[pool.next]
            }
            guard let job else { return }
            let request = self.request(job)
            let sent = ContinuousClock.now
            ledger.sent(step: job.step, at: sent, lag: sent - job.scheduled)
            do {
                let response: HTTPConnection.Response
                do {
                    guard let open = connection else { throw HTTPConnection.Failure.closed }
                    response = try open.exchange(request)
                } catch HTTPConnection.Failure.closed {
                    // The server closed an idle connection: send again on a new one (the key makes it safe).
                    connection = try HTTPConnection(port: port)
                    response = try connection!.exchange(request)
                }
                if !response.keepAlive { connection = nil }
                if response.status == 202,
                    let id = try? decoder.decode(AcceptedOrder.self, from: Data(response.body)).id
                {
                    ledger.accepted(id, step: job.step, sent: sent)
                } else {
                    ledger.failed(step: job.step, reason: "\(response.status)")
                }
            } catch {
                connection = nil
                ledger.failed(step: job.step, reason: "\(error)")
            }
        }
    }

    struct AcceptedOrder: Decodable {
        var id: UUID
    }

    private func request(_ job: Job) -> [UInt8] {
        let body =
            #"{"lines":[{"sku":""# + skus[job.index % skus.count] + #"","quantity":1}],"payment":{"token":"tok_ok"}}"#
        return Array(
            ("POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                + "Authorization: Bearer \(tokens[job.index % tokens.count])\r\n"
                + "Content-Type: application/json\r\nIdempotency-Key: load-\(runKey)-\(job.step)-\(job.index)\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n" + body).utf8)
    }

    private static func sleep(until instant: ContinuousClock.Instant) {
        let remaining = instant - .now
        guard remaining > .zero else { return }
        Thread.sleep(
            forTimeInterval: Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18)
    }
}

/// One HTTP/1.1 keep-alive connection to 127.0.0.1 with blocking calls, used by one thread.
final class HTTPConnection {
    enum Failure: Error, CustomStringConvertible {
        /// The peer closed the connection before any byte of the answer.
        case closed
        case system(String, Int32)
        case malformed

        var description: String {
            switch self {
            case .closed: "connection closed"
            case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
            case .malformed: "malformed answer"
            }
        }
    }

    struct Response {
        var status: Int
        var body: [UInt8]
        var keepAlive: Bool
    }

    private let descriptor: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure.system("socket", errno) }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // A request stuck for 30 s counts as failed rather than holding its thread for ever.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw Failure.system("connect", code)
        }
    }

    deinit { close(descriptor) }

    func exchange(_ request: [UInt8]) throws -> Response {
        var written = 0
        while written < request.count {
            let count = request.withUnsafeBytes {
                send(descriptor, $0.baseAddress! + written, $0.count - written, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else {
                throw errno == EPIPE || errno == ECONNRESET ? Failure.closed : Failure.system("send", errno)
            }
            written += count
        }
        return try readResponse()
    }

    private func readResponse() throws -> Response {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            headEnd = buffer.firstRange(of: separator)?.lowerBound
            if headEnd == nil { try fill(answerStarted: !buffer.isEmpty) }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + separator.count)
        let lines = head.split(separator: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure.malformed }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
            .lowercased()
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"] == "chunked" {
            while true {
                let size = try Int(readLine(), radix: 16) ?? -1
                guard size >= 0 else { throw Failure.malformed }
                if size == 0 {
                    _ = try readLine()
                    break
                }
                try fill(upTo: size + 2)
                body += buffer[0..<size]
                buffer.removeFirst(size + 2)
            }
        } else {
            let length = Int(headers["content-length"] ?? "0") ?? 0
            try fill(upTo: length)
            body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        return Response(status: status, body: body, keepAlive: headers["connection"] != "close")
    }

    private func readLine() throws -> String {
        let separator: [UInt8] = Array("\r\n".utf8)
        while buffer.firstRange(of: separator) == nil { try fill(answerStarted: true) }
        let end = buffer.firstRange(of: separator)!.lowerBound
        let line = String(decoding: buffer[0..<end], as: UTF8.self)
        buffer.removeFirst(end + separator.count)
        return line.split(separator: ";").first.map(String.init) ?? ""
    }

    private func fill(upTo count: Int) throws {
        while buffer.count < count { try fill(answerStarted: true) }
    }

    private func fill(answerStarted: Bool) throws {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffer += chunk[0..<count]
        } else if count == 0 || errno == ECONNRESET {
            throw answerStarted ? Failure.malformed : Failure.closed
        } else {
            throw Failure.system("recv", errno)
        }
    }
}
