/// Exponential backoff with jitter for reconnection attempts.
///
/// Attempt n waits a random time between half and all of `min(initial * 2^n, maximum)`, so
/// many clients that lost the same broker do not return in step.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before attempt `attempt` (0-based); `unitRandom` is in 0...1.
    public func delay(attempt: Int, unitRandom: Double) -> Duration {
        let factor = Double(1 << min(attempt, 30))
        let ceiling = min(initial * factor, maximum)
        return ceiling * (0.5 + 0.5 * min(max(unitRandom, 0), 1))
    }

    public func delay(attempt: Int) -> Duration {
        delay(attempt: attempt, unitRandom: Double.random(in: 0...1))
    }
}
