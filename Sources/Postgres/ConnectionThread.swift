import Foundation
import Synchronization

/// The thread that owns one libpq connection, usable as a Swift `TaskExecutor`.
///
/// `PostgresPool.withConnection` runs the borrower's (nonisolated) code with this executor as
/// its preference, so the statements of one lease run back to back on this thread without a
/// thread hop per statement — the hop is paid once when the lease starts and once when it ends.
/// libpq's blocking calls therefore run only here: never on an event loop or the cooperative pool.
final class ConnectionThread: TaskExecutor, @unchecked Sendable {
    // Confinement: `jobs` and `stopping` are only touched under `condition`'s lock.
    private let condition = NSCondition()
    private enum Work {
        case job(UnownedJob)
        case closure(() -> Void)
    }
    private var jobs: [Work] = []
    private var stopping = false
    private let threadID = Mutex<pthread_t?>(nil)

    init(name: String) {
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        // Keep the executor alive as long as its thread runs.
        _ = Unmanaged.passRetained(self)
    }

    func enqueue(_ job: UnownedJob) {
        submit(.job(job))
    }

    /// Runs `body` on this thread.
    func execute(_ body: @escaping () -> Void) {
        submit(.closure(body))
    }

    private func submit(_ work: Work) {
        condition.lock()
        jobs.append(work)
        condition.signal()
        condition.unlock()
    }

    /// True on this executor's own thread.
    var isCurrent: Bool {
        threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Ends the thread after the jobs already queued.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        threadID.withLock { $0 = pthread_self() }
        var batch: [Work] = []
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                break
            }
            swap(&batch, &jobs)
            condition.unlock()
            for work in batch {
                switch work {
                case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
                case .closure(let body): body()
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
        Unmanaged.passUnretained(self).release()
    }
}
