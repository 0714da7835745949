import Foundation
import Metrics
import NIOCore
import NIOPosix
import Postgres
import Prometheus
import Synchronization

/// docs/interface.md §3's idempotency: the same key from the same caller with the same body names the
/// same order however often and however concurrently it is sent; another body is 409.
///
/// Claims are committed together (group commit): a claim that arrives while `flushers` claims
/// are already on their way to the database waits for the next one, which carries every claim
/// that arrived meanwhile in one statement, so concurrent requests share one commit and its
/// disk sync instead of queueing for connections one commit each.
final class IdempotencyKeys: IdempotencyClaiming, Sendable {
    let pool: PostgresPool
    let flushers: Int
    let maxBatch: Int
    private let state = Mutex(State())
    /// `depot_edge_idempotency_claims_per_commit`: group commit at work.
    private let batchSize: Recorder

    private struct State {
        var waiting: [Waiting] = []
        var flushing = 0
    }

    /// A claim and its caller; the first answer wins: the commit's, or the deadline's.
    private final class Waiting: Sendable {
        let claim: Claim
        private let continuation: Mutex<CheckedContinuation<IdempotencyClaim, any Error>?>
        private let deadline = Mutex<Scheduled<Void>?>(nil)

        init(claim: Claim, continuation: CheckedContinuation<IdempotencyClaim, any Error>) {
            self.claim = claim
            self.continuation = Mutex(continuation)
        }

        func arm(_ timer: Scheduled<Void>) { deadline.withLock { $0 = timer } }

        func resume(with result: Result<IdempotencyClaim, any Error>) {
            guard let continuation = continuation.withLock({ $0.take() }) else { return }
            deadline.withLock { $0.take() }?.cancel()
            continuation.resume(with: result)
        }
    }

    struct Claim: Encodable {
        let subject: String
        let key: String
        let request: String
        let candidate: UUID
    }

    init(pool: PostgresPool, registry: PrometheusCollectorRegistry, flushers: Int = 2, maxBatch: Int = 256) {
        self.pool = pool
        var factory = PrometheusMetricsFactory(registry: registry)
        let label = "depot_edge_idempotency_claims_per_commit"
        factory.valueHistogramBuckets[label] = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        self.batchSize = Recorder(label: label, aggregate: true, factory: factory)
        self.flushers = max(1, flushers)
        self.maxBatch = max(1, maxBatch)
    }

    /// Claims `key` for a new order, or returns the order it already names; 503 when the
    /// commit has not returned within `timeout`.
    ///
    /// A commit can wait without end while a synchronous standby is away. The caller is answered
    /// then, but the commit is not cancelled: a cancelled wait would leave the key committed on
    /// the primary alone, where a failover could lose it after a retry had been told otherwise.
    func claim(subject: String, key: String, request: String, timeout: Duration) async throws -> IdempotencyClaim {
        let claim = Claim(subject: subject, key: key, request: request, candidate: UUID())
        return try await withCheckedThrowingContinuation { continuation in
            let waiting = Waiting(claim: claim, continuation: continuation)
            let lead = state.withLock { state -> Bool in
                state.waiting.append(waiting)
                guard state.flushing < flushers else { return false }
                state.flushing += 1
                return true
            }
            if lead { Task { await self.flushUntilNoneWait() } }
            let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(timeout)) {
                self.state.withLock { $0.waiting.removeAll { $0 === waiting } }
                waiting.resume(
                    with: .failure(
                        Problem.unavailable(
                            "the database did not commit the Idempotency-Key in time (a synchronous standby may be away); nothing was sent, retry with the same key",
                            retryAfter: 2)))
            }
            waiting.arm(timer)
        }
    }

    private func flushUntilNoneWait() async {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                let batch = Array(state.waiting.prefix(maxBatch))
                state.waiting.removeFirst(batch.count)
                if batch.isEmpty { state.flushing -= 1 }
                return batch
            }
            guard !batch.isEmpty else { return }
            batchSize.record(batch.count)
            do {
                let claims = try await commit(batch.map(\.claim))
                for (waiting, claim) in zip(batch, claims) { waiting.resume(with: .success(claim)) }
            } catch {
                for waiting in batch { waiting.resume(with: .failure(error)) }
            }
        }
    }

    /// One statement for all: concurrent identical requests all read the one row that won.
    func commit(_ claims: [Claim]) async throws -> [IdempotencyClaim] {
        let input = try PostgresJSON(
            encoding: claims.enumerated().map { ClaimRow(index: $0.offset, claim: $0.element) })
        return try await pool.withConnection { connection in
            var found: [Int: (request: String, orderId: UUID)] = [:]
            for row in try await connection.query(
                """
                WITH input AS (
                    SELECT * FROM jsonb_to_recordset(\(input)) AS t(index int, subject text, key text, request text, candidate uuid)
                ), inserted AS (
                    INSERT INTO edge.idempotency_keys (subject, key, request, order_id)
                    SELECT DISTINCT ON (subject, key) subject, key, request, candidate FROM input ORDER BY subject, key, index
                    ON CONFLICT (subject, key) DO NOTHING
                    RETURNING subject, key, request, order_id
                )
                SELECT i.index, coalesce(n.request, k.request), coalesce(n.order_id, k.order_id)
                FROM input i
                LEFT JOIN inserted n ON n.subject = i.subject AND n.key = i.key
                LEFT JOIN edge.idempotency_keys k ON k.subject = i.subject AND k.key = i.key
                """)
            {
                if let orderId = try row.decode(2, as: UUID?.self) {
                    found[try row.decode(0)] = (try row.decode(1), orderId)
                }
            }
            let unseen = claims.indices.filter { found[$0] == nil }
            if !unseen.isEmpty {
                // Inserted by a transaction this statement's snapshot did not see: read again.
                let again = try PostgresJSON(encoding: unseen.map { ClaimRow(index: $0, claim: claims[$0]) })
                for row in try await connection.query(
                    """
                    SELECT i.index, k.request, k.order_id
                    FROM jsonb_to_recordset(\(again)) AS i(index int, subject text, key text)
                    JOIN edge.idempotency_keys k ON k.subject = i.subject AND k.key = i.key
                    """)
                {
                    found[try row.decode(0)] = (try row.decode(1), try row.decode(2))
                }
            }
            return try claims.indices.map { index in
                guard let row = found[index] else {
                    throw PostgresError(.decoding, message: "an idempotency key vanished while it was claimed")
                }
                return row.request == claims[index].request ? .order(row.orderId) : .conflict
            }
        }
    }

    private struct ClaimRow: Encodable {
        let index: Int
        let subject: String
        let key: String
        let request: String
        let candidate: UUID

        init(index: Int, claim: Claim) {
            self.index = index
            (subject, key, request, candidate) = (claim.subject, claim.key, claim.request, claim.candidate)
        }
    }

    func ping() async throws {
        try await pool.withConnection { _ = try await $0.query("SELECT 1") }
    }

    /// A request body's meaning in one canonical text (keys sorted, whitespace ignored).
    static func canonical(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
