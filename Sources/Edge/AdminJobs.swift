import DepotModel
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The admin API's long operator work — redrives, purges, replay dry-runs — run one at a time,
/// in order, by one service of the edge, with progress readable at `/v1/admin/jobs/{id}`.
///
/// One at a time because a replay dry-run rebuilds into the one aside schema, and a redrive
/// and a purge of the same queue must not interleave. The edge keeps its own jobs in memory (the
/// newest 100) and writes them to the ledger, so that any edge answers for any job; the work
/// itself keeps the CLI's guarantees whether or not it finishes.
final class AdminJobs: Service, Sendable {
    enum State: String, Sendable, Codable {
        case queued, running, succeeded, failed
        var isFinished: Bool { self == .succeeded || self == .failed }
    }

    /// A job as the API shows it.
    struct Job: Sendable, Codable {
        var id: String
        /// `redrive`, `purge` or `replay-dry-run`.
        var kind: String
        /// What it works on: a dead-letter queue, or the projections.
        var target: String
        /// For a redrive: `all`, or the message id or reason it was limited to.
        var selection: String?
        /// The operator's token `sub`.
        var requestedBy: String
        var state: State
        var createdAt: String
        var finishedAt: String?
        /// Units done so far (messages, or events for a replay) and the total when known.
        var done: Int64
        var total: Int64?
        /// One line on the outcome, or why it failed.
        var message: String?
        var result: JobResult?
        /// The edge process that runs it (host:pid).
        var edge: String?
        /// Bumped by every change, so that the ledger never takes an older copy over a newer one
        /// (the writes of one job race: the one-second writer and the final write). Not shown.
        var revision = 0

        enum CodingKeys: String, CodingKey {
            case id, kind, target, selection, state, done, total, message, result, edge
            case requestedBy = "requested_by"
            case createdAt = "created_at"
            case finishedAt = "finished_at"
        }
    }

    /// What a finished job produced.
    struct JobResult: Sendable, Codable {
        var redriven: Int?
        var purged: Int?
        /// What is left in the queue afterwards.
        var remaining: Int?
        var differences: [Difference]?

        struct Difference: Sendable, Codable {
            var table: String
            var added: Int
            var removed: Int
            var different: Int
            var samples: [String]
        }
    }

    /// Reports progress from inside a job.
    struct Progress: Sendable {
        let update: @Sendable (Int64, Int64?) -> Void
        func callAsFunction(done: Int64, total: Int64?) { update(done, total) }
    }

    typealias Work = @Sendable (Progress) async throws -> (message: String, result: JobResult)

    private struct Store {
        var jobs: [String: Job] = [:]
        var order: [String] = []
        var queued = 0
    }

    static let kept = 100
    static let maximumQueued = 20

    /// This process, as jobs name the edge that runs them.
    static let thisEdge = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"

    private let store = Mutex(Store())
    private let stream: AsyncStream<(String, Work)>
    private let continuation: AsyncStream<(String, Work)>.Continuation
    private let ledger: (any AdminJobLedger)?
    private let edge: String
    private let writesFailing = Atomic<Bool>(false)
    private let logger: Logger

    /// Without a ledger, jobs are this process's alone (the router's own tests).
    init(logger: Logger, ledger: (any AdminJobLedger)? = nil, edge: String = AdminJobs.thisEdge) {
        (stream, continuation) = AsyncStream.makeStream(of: (String, Work).self)
        self.ledger = ledger
        self.edge = edge
        self.logger = logger
    }

    /// Queues `work`, or returns the same job (kind, target, selection) that is still queued:
    /// it will do what was asked, so asking twice does not queue the work twice. Nil when too
    /// many jobs are waiting already.
    func submit(kind: String, target: String, selection: String? = nil, by subject: String, work: @escaping Work)
        async -> Job?
    {
        let job = Job(
            id: UUID().uuidString.lowercased(), kind: kind, target: target, selection: selection,
            requestedBy: subject, state: .queued, createdAt: Self.now(), done: 0, edge: edge)
        enum Outcome {
            case queued
            case waiting(Job)
            case full
        }
        let outcome = store.withLock { store -> Outcome in
            for id in store.order {
                if let same = store.jobs[id], same.state == .queued, same.kind == kind, same.target == target,
                    same.selection == selection
                {
                    return .waiting(same)
                }
            }
            guard store.queued < Self.maximumQueued else { return .full }
            store.queued += 1
            store.jobs[job.id] = job
            store.order.append(job.id)
            // Inside the lock, so that jobs run in the order they were asked for.
            continuation.yield((job.id, work))
            // Forget the oldest finished jobs.
            while store.order.count > Self.kept,
                let index = store.order.firstIndex(where: { store.jobs[$0]?.state.isFinished == true })
            {
                store.jobs[store.order.remove(at: index)] = nil
            }
            return .queued
        }
        switch outcome {
        case .full: return nil
        case .waiting(let same): return same
        case .queued:
            await write([job])
            return job
        }
    }

    /// This edge's job as it is now, or another edge's as it last wrote it.
    func job(_ id: String) async throws -> Job? {
        if let own = ownJob(id) { return own }
        guard let ledger, let uuid = UUID(uuidString: id) else { return nil }
        return try await ledger.job(id: uuid)
    }

    private func ownJob(_ id: String) -> Job? { store.withLock { $0.jobs[id] } }

    /// Every edge's newest first; this edge's own as they are now.
    func recent(limit: Int) async throws -> [Job] {
        let own = store.withLock { store in store.order.suffix(limit).reversed().compactMap { store.jobs[$0] } }
        guard let ledger else { return own }
        let ownIds = Set(own.map(\.id))
        let others = try await ledger.recent(limit: limit).filter { !ownIds.contains($0.id) }
        // RFC 3339 in UTC with fixed digits: the strings sort as the instants do.
        return (own + others).sorted { $0.createdAt > $1.createdAt }.prefix(limit).map { $0 }
    }

    /// The job once it has finished, or as it is at `deadline`.
    func wait(for id: String, until deadline: ContinuousClock.Instant) async -> Job? {
        while let job = ownJob(id) {
            if job.state.isFinished || ContinuousClock.now >= deadline { return job }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return nil
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.writeUnfinishedEverySecond() }
            await runInOrder()
            group.cancelAll()
        }
        continuation.finish()
    }

    private func runInOrder() async {
        for await (id, work) in stream.cancelOnGracefulShutdown() {
            let job = update(id) {
                $0.state = .running
            }
            store.withLock { $0.queued -= 1 }
            guard let job else { continue }
            let progress = Progress { [weak self] done, total in
                _ = self?.update(id) {
                    $0.done = done
                    $0.total = total ?? $0.total
                }
            }
            let finished: Job?
            do {
                let (message, result) = try await work(progress)
                finished = update(id) {
                    $0.state = .succeeded
                    $0.message = message
                    $0.result = result
                    $0.finishedAt = Self.now()
                }
                logger.info(
                    "admin job done",
                    metadata: [
                        "job": "\(id)", "kind": "\(job.kind)", "target": "\(job.target)", "sub": "\(job.requestedBy)",
                        "outcome": "\(message)",
                    ])
            } catch {
                finished = update(id) {
                    $0.state = .failed
                    $0.message = Self.explain(error, kind: job.kind)
                    $0.finishedAt = Self.now()
                }
                logger.warning(
                    "admin job failed",
                    metadata: [
                        "job": "\(id)", "kind": "\(job.kind)", "target": "\(job.target)", "sub": "\(job.requestedBy)",
                        "error": "\(String(reflecting: error).prefix(500))",
                    ])
            }
            await write(finished.map { [$0] } ?? [])
        }
    }

    /// Progress, and that this edge still runs its jobs: a job whose edge stops writing is shown
    /// failed by the others (`PostgresAdminJobLedger.silence`).
    private func writeUnfinishedEverySecond() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let unfinished = store.withLock { store in
                store.order.compactMap { store.jobs[$0] }.filter { !$0.state.isFinished }
            }
            await write(unfinished)
        }
    }

    /// A job that cannot be written still runs, and this edge still answers for it.
    private func write(_ jobs: [Job]) async {
        guard let ledger, !jobs.isEmpty else { return }
        do {
            try await ledger.save(jobs)
            if writesFailing.exchange(false, ordering: .relaxed) { logger.info("admin jobs are written again") }
        } catch {
            if !writesFailing.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "admin jobs cannot be written; other edges will not see this edge's jobs until they are",
                    metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            }
        }
    }

    @discardableResult
    private func update(_ id: String, _ change: (inout Job) -> Void) -> Job? {
        store.withLock { store in
            guard var job = store.jobs[id] else { return nil }
            change(&job)
            job.revision += 1
            store.jobs[id] = job
            return job
        }
    }

    /// What failed and what is true now, as the CLI says it.
    static func explain(_ error: any Error, kind: String) -> String {
        let cause = String(String(describing: error).prefix(300))
        switch kind {
        case "redrive":
            return "\(cause); messages already sent stay sent, the one being moved stays in its queue: run it again"
        case "replay-dry-run": return "\(cause); nothing was changed"
        default: return cause
        }
    }

    static func now() -> String { RFC3339.string(Date()) }
}
