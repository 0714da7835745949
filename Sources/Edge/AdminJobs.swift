import DepotModel
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The admin API's long operator work — redrives, purges, replay dry-runs — run one at a time,
/// in order, by one service of the edge, with progress readable at `/v1/admin/jobs/{id}`.
///
/// One at a time because a replay dry-run rebuilds into the one aside schema, and a redrive
/// and a purge of the same queue must not interleave. Jobs are kept in memory (the newest 100),
/// per edge process; the work itself keeps the CLI's guarantees whether or not it finishes.
final class AdminJobs: Service, Sendable {
    enum State: String, Sendable, Encodable { case queued, running, succeeded, failed }

    /// A job as the API shows it.
    struct Job: Sendable, Encodable {
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

        enum CodingKeys: String, CodingKey {
            case id, kind, target, selection, state, done, total, message, result
            case requestedBy = "requested_by"
            case createdAt = "created_at"
            case finishedAt = "finished_at"
        }
    }

    /// What a finished job produced.
    struct JobResult: Sendable, Encodable {
        var redriven: Int?
        var purged: Int?
        /// What is left in the queue afterwards.
        var remaining: Int?
        var differences: [Difference]?

        struct Difference: Sendable, Encodable {
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

    private let store = Mutex(Store())
    private let stream: AsyncStream<(String, Work)>
    private let continuation: AsyncStream<(String, Work)>.Continuation
    private let logger: Logger

    init(logger: Logger) {
        (stream, continuation) = AsyncStream.makeStream(of: (String, Work).self)
        self.logger = logger
    }

    /// Queues `work`, or returns the same job (kind, target, selection) that is still queued:
    /// it will do what was asked, so asking twice does not queue the work twice. Nil when too
    /// many jobs are waiting already.
    func submit(kind: String, target: String, selection: String? = nil, by subject: String, work: @escaping Work)
        -> Job?
    {
        let job = Job(
            id: UUID().uuidString.lowercased(), kind: kind, target: target, selection: selection,
            requestedBy: subject, state: .queued, createdAt: Self.now(), done: 0)
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
            // Forget the oldest finished jobs.
            while store.order.count > Self.kept,
                let index = store.order.firstIndex(where: {
                    let state = store.jobs[$0]?.state
                    return state == .succeeded || state == .failed
                })
            {
                store.jobs[store.order.remove(at: index)] = nil
            }
            return .queued
        }
        switch outcome {
        case .full: return nil
        case .waiting(let same): return same
        case .queued:
            continuation.yield((job.id, work))
            return job
        }
    }

    func job(_ id: String) -> Job? { store.withLock { $0.jobs[id] } }

    /// The newest first.
    func recent(limit: Int) -> [Job] {
        store.withLock { store in store.order.suffix(limit).reversed().compactMap { store.jobs[$0] } }
    }

    /// The job once it has finished, or as it is at `deadline`.
    func wait(for id: String, until deadline: ContinuousClock.Instant) async -> Job? {
        while let job = job(id) {
            if job.state == .succeeded || job.state == .failed || ContinuousClock.now >= deadline { return job }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return nil
    }

    func run() async throws {
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
            do {
                let (message, result) = try await work(progress)
                update(id) {
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
                update(id) {
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
        }
        continuation.finish()
    }

    @discardableResult
    private func update(_ id: String, _ change: (inout Job) -> Void) -> Job? {
        store.withLock { store in
            guard var job = store.jobs[id] else { return nil }
            change(&job)
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
