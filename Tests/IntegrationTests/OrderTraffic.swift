import DepotModel
import Foundation
import Synchronization

/// Orders sent with idempotency keys, the way a client retrying after a failure sends them, and
/// every answer recorded: counts by status, 503s without `Retry-After` or problem+json, the keys
/// not accepted yet (a 503 or a broken connection: the client must send them again) and the order
/// each key got. A key that got two different orders counts as a server error (status -1).
final class OrderTraffic: Sendable {
    struct State {
        var byStatus: [Int: Int] = [:]
        var transportErrors = 0
        var badUnavailable: [String] = []
        var pending: Set<String> = []
        /// Key → order id.
        var accepted: [String: String] = [:]
        /// When each accepted request was sent and answered.
        var acceptances: [(sent: Date, answered: Date)] = []
    }

    /// The order body every key is sent with (a key sent again with another body is a 409).
    let body: String
    let state = Mutex(State())
    private let stopped = Mutex(false)

    init(body: String) { self.body = body }

    var isStopped: Bool { stopped.withLock { $0 } }
    func stop() { stopped.withLock { $0 = true } }

    /// Records one answer; `key` is the order's Idempotency-Key, nil for a read.
    func record(_ reply: EdgeClient.Reply, key: String?, sent: Date = Date()) {
        let answered = Date()
        state.withLock { state in
            state.byStatus[reply.status, default: 0] += 1
            if reply.status == 503,
                reply.header("Retry-After") == nil || reply.header("Content-Type") != "application/problem+json"
            {
                state.badUnavailable.append("\(reply.headers) \(reply.text.prefix(200))")
            }
            guard let key else { return }
            if reply.status == 202 || reply.status == 201, let id = reply.json["id"] as? String {
                state.pending.remove(key)
                state.acceptances.append((sent, answered))
                if let earlier = state.accepted[key], earlier != id { state.byStatus[-1, default: 0] += 1 }
                state.accepted[key] = id
            } else {
                state.pending.insert(key)
            }
        }
    }

    /// Sends the order of `key` once and records what came back.
    func order(_ edge: EdgeClient, token: String, key: String) async {
        let sent = Date()
        do {
            record(
                try await edge.send("POST", "/v1/orders", token: token, json: body, headers: ["Idempotency-Key": key]),
                key: key, sent: sent)
        } catch {
            state.withLock {
                $0.transportErrors += 1
                $0.pending.insert(key)
            }
        }
    }

    /// Sends every key not accepted yet again, as a client would, until all are accepted.
    func resendPending(_ edge: EdgeClient, token: String, timeout: Duration = .seconds(90)) async throws -> Bool {
        try await eventually(timeout: timeout) {
            for key in self.state.withLock({ $0.pending }) { await self.order(edge, token: token, key: key) }
            return self.state.withLock { $0.pending.isEmpty }
        }
    }

    var acceptedCount: Int { state.withLock { $0.accepted.count } }
    /// The first answer to an order sent after `instant` that accepted it.
    func firstAcceptance(sentAfter instant: Date) -> Date? {
        state.withLock { $0.acceptances.filter { $0.sent > instant }.map(\.answered).min() }
    }
    var acceptedOrders: [UUID] { state.withLock { Set($0.accepted.values).compactMap(UUID.init(canonicalText:)) } }
    /// 5xx answers other than 503, and keys with two orders.
    var serverErrors: Int {
        state.withLock { $0.byStatus.filter { ($0.key >= 500 && $0.key != 503) || $0.key == -1 }.values.reduce(0, +) }
    }
    var summary: String {
        state.withLock { state in
            state.byStatus.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
                + "; transport errors \(state.transportErrors); accepted \(state.accepted.count)"
        }
    }
}
