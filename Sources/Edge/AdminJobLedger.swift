import DepotModel
import Foundation
import Postgres

/// Where the admin jobs are written so that every edge behind a balancer answers for every job,
/// whichever edge runs it: the console follows a job's `Location`, and round robin sends each
/// poll to another edge.
protocol AdminJobLedger: Sendable {
    /// Writes the jobs as they are now, and that the edge running them is alive.
    func save(_ jobs: [AdminJobs.Job]) async throws
    /// Nil when no edge has written the job.
    func job(id: UUID) async throws -> AdminJobs.Job?
    /// The newest first.
    func recent(limit: Int) async throws -> [AdminJobs.Job]
}

/// `edge.admin_jobs` on the primary: one row per job, its document as the API shows it.
struct PostgresAdminJobLedger: AdminJobLedger {
    /// An unfinished job whose edge has not written it for this long is shown failed: the edge
    /// stopped (a crash, a kill) and nothing runs it any more. The edge writes every second; this
    /// is well past one write waiting the pool's whole acquire timeout (10 s), so a busy edge is
    /// not taken for a dead one. An edge cut off from the database for longer corrects the row
    /// when it can write again.
    static let silence: Duration = .seconds(30)
    static let kept = "30 days"

    let pool: PostgresPool

    private struct Row: Encodable {
        let id: String
        let createdAt: String
        let revision: Int
        let document: AdminJobs.Job

        enum CodingKeys: String, CodingKey {
            case id, revision, document
            case createdAt = "created_at"
        }
    }

    func save(_ jobs: [AdminJobs.Job]) async throws {
        guard !jobs.isEmpty else { return }
        let rows = try PostgresJSON(
            encoding: jobs.map { Row(id: $0.id, createdAt: $0.createdAt, revision: $0.revision, document: $0) })
        try await pool.withConnection { connection in
            _ = try await connection.execute(
                """
                INSERT INTO edge.admin_jobs (id, created_at, revision, document, written_at)
                SELECT id, created_at, revision, document, now()
                FROM jsonb_to_recordset(\(rows)) AS t(id uuid, created_at timestamptz, revision int, document jsonb)
                ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, document = excluded.document, written_at = now()
                WHERE admin_jobs.revision <= excluded.revision
                """)
            // When a job is queued (its first revision), not on every second's write.
            if jobs.contains(where: { $0.revision == 0 }) {
                _ = try await connection.execute(
                    "DELETE FROM edge.admin_jobs WHERE created_at < now() - interval '\(unescaped: Self.kept)'")
            }
        }
    }

    func job(id: UUID) async throws -> AdminJobs.Job? {
        try await read(id: id, limit: 1).first
    }

    func recent(limit: Int) async throws -> [AdminJobs.Job] {
        try await read(id: nil, limit: limit)
    }

    /// One job, or with `id` nil the newest.
    private func read(id: UUID?, limit: Int) async throws -> [AdminJobs.Job] {
        let silence = Int(Self.silence.components.seconds)
        return try await pool.withConnection { connection in
            try await connection.query(
                """
                SELECT document, written_at < now() - make_interval(secs => \(silence)), written_at
                FROM edge.admin_jobs WHERE \(id)::uuid IS NULL OR id = \(id)
                ORDER BY created_at DESC, id LIMIT \(limit)
                """
            ).compactMap { row in
                // A row this edge cannot read (written by a newer edge) is left out, not a 500.
                guard var job = try? row.decode(0, as: PostgresJSON.self).decode(AdminJobs.Job.self) else {
                    return nil
                }
                if try row.decode(1, as: Bool.self), !job.state.isFinished {
                    let lastWritten = try row.decode(2, as: Date.self)
                    job.state = .failed
                    job.message =
                        "the edge that ran it (\(job.edge ?? "unknown")) stopped before it finished: not heard from since "
                        + "\(RFC3339.string(lastWritten)); what it did stays done: run it again"
                }
                return job
            }
        }
    }
}
