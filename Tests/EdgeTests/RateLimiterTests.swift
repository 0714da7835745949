import Testing

@testable import Edge

@Suite("Rate limiter")
struct RateLimiterTests {
    @Test("a token bucket refills at its rate up to its burst, per key")
    func tokenBucket() {
        let limiter = RateLimiter(rate: 2, burst: 3)
        let start = ContinuousClock.now
        #expect((0..<3).allSatisfy { _ in limiter.take("k", now: start).allowed })
        let refused = limiter.take("k", now: start)
        #expect(!refused.allowed && refused.retryAfter == 1)
        #expect(limiter.take("k", now: start + .milliseconds(600)).allowed)
        #expect(limiter.take("other", now: start).allowed)
        // Never more than the burst, however long the wait.
        #expect(limiter.take("k", now: start + .seconds(3600)).remaining == 2)
    }
}
