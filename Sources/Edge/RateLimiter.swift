import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// A token bucket per caller (`sub`, or the client address without a token): `rate` tokens a
/// second up to `burst`. Over the limit: 429 with `Retry-After` and `RateLimit-*` headers.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Double
    private let buckets = Mutex([String: Bucket]())

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Takes a token for `key`; returns nil when allowed, else the seconds to wait.
    func take(_ key: String, now: ContinuousClock.Instant = .now) -> (allowed: Bool, remaining: Int, retryAfter: Int) {
        buckets.withLock { buckets in
            // Bounded memory under a flood of addresses.
            if buckets.count > 100_000 { buckets.removeAll(keepingCapacity: true) }
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = now - bucket.updated
            bucket.tokens = min(
                burst,
                bucket.tokens + rate
                    * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return (true, Int(bucket.tokens), 0)
            }
            return (false, 0, max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))))
        }
    }
}

struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let limiter: RateLimiter

    /// Probes are never limited: an orchestrator's health checks must not starve callers or be refused.
    static let exempt: Set<String> = ["/healthz", "/readyz", "/metrics"]

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response)
        async throws -> Response
    {
        if Self.exempt.contains(request.uri.path) { return try await next(request, context) }
        let key = context.caller.map { "sub:\($0.subject)" } ?? "addr:\(context.remoteAddress)"
        let (allowed, remaining, retryAfter) = limiter.take(key)
        let limitHeaders: HTTPFields = [
            HTTPField.Name("RateLimit-Limit")!: "\(Int(limiter.burst))",
            HTTPField.Name("RateLimit-Remaining")!: "\(remaining)",
            HTTPField.Name("RateLimit-Reset")!: "\(retryAfter)",
        ]
        guard allowed else {
            var headers = limitHeaders
            headers[.retryAfter] = "\(retryAfter)"
            throw Problem(
                .tooManyRequests, "rate limit of \(limiter.rate)/s exceeded; retry in \(retryAfter) s", headers: headers
            )
        }
        var response = try await next(request, context)
        response.headers.append(contentsOf: limitHeaders)
        return response
    }
}
