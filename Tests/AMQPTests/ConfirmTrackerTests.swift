import Testing

@testable import AMQP

@Suite("ConfirmTracker")
struct ConfirmTrackerTests {
    typealias Tracker = ConfirmTracker<String>

    func names(_ settled: [(String, Tracker.Outcome)]) -> [String] { settled.map(\.0) }

    @Test("tags count from 1 and a multiple ack settles every tag up to it")
    func multipleAck() {
        var tracker = Tracker()
        #expect((1...5).map { tracker.published("m\($0)") } == [1, 2, 3, 4, 5])
        #expect(names(tracker.acked(tag: 3, multiple: true)) == ["m1", "m2", "m3"])
        #expect(tracker.outstandingCount == 2)
        #expect(names(tracker.acked(tag: 5, multiple: true)) == ["m4", "m5"])
        #expect(tracker.outstandingCount == 0)
    }

    @Test("single acks may come out of order, and a later multiple ack skips the settled ones")
    func outOfOrder() {
        var tracker = Tracker()
        for i in 1...4 { _ = tracker.published("m\(i)") }
        #expect(names(tracker.acked(tag: 3, multiple: false)) == ["m3"])
        #expect(names(tracker.acked(tag: 3, multiple: false)) == [])  // a repeat settles nothing
        #expect(names(tracker.acked(tag: 4, multiple: true)) == ["m1", "m2", "m4"])
    }

    @Test("nacks settle as nacked, singly or multiply")
    func nacks() {
        var tracker = Tracker()
        for i in 1...3 { _ = tracker.published("m\(i)") }
        let settled = tracker.nacked(tag: 2, multiple: true)
        #expect(names(settled) == ["m1", "m2"])
        #expect(settled.allSatisfy { if case .nacked = $0.1 { true } else { false } })
        if case .confirmed = tracker.acked(tag: 3, multiple: false).first?.1 {
        } else {
            Issue.record("m3 should be confirmed")
        }
    }

    @Test("a basic.return marks the matching mandatory publish, whose ack then reports it unroutable")
    func returnBeforeAck() {
        var tracker = Tracker()
        let route = { (key: String, id: String) in Tracker.Route(exchange: "x", routingKey: key, messageId: id) }
        _ = tracker.published("a", mandatoryRoute: route("k", "1"))
        _ = tracker.published("b", mandatoryRoute: route("k", "2"))
        _ = tracker.published("c")
        tracker.returned(route("k", "2"), replyCode: 312, replyText: "NO_ROUTE")
        let settled = tracker.acked(tag: 3, multiple: true)
        #expect(names(settled) == ["a", "b", "c"])
        guard case .returned(let code, let text) = settled[1].1 else {
            Issue.record("b should be returned")
            return
        }
        #expect(code == 312 && text == "NO_ROUTE")
        if case .confirmed = settled[0].1 {} else { Issue.record("a was routed") }
    }

    @Test("two identical mandatory publishes: each return marks the oldest unmarked one")
    func identicalReturns() {
        var tracker = Tracker()
        let route = Tracker.Route(exchange: "x", routingKey: "k", messageId: nil)
        _ = tracker.published("a", mandatoryRoute: route)
        _ = tracker.published("b", mandatoryRoute: route)
        tracker.returned(route, replyCode: 312, replyText: "NO_ROUTE")
        let settled = tracker.acked(tag: 2, multiple: true)
        if case .returned = settled[0].1 {} else { Issue.record("a should be the returned one") }
        if case .confirmed = settled[1].1 {} else { Issue.record("b was not returned") }
    }

    @Test("reset hands back the unsettled publishes in order and restarts tags at 1")
    func reset() {
        var tracker = Tracker()
        for i in 1...4 { _ = tracker.published("m\(i)") }
        _ = tracker.acked(tag: 2, multiple: false)
        #expect(tracker.reset() == ["m1", "m3", "m4"])
        #expect(tracker.published("n1") == 1)
        #expect(tracker.acked(tag: 99, multiple: false).isEmpty)
    }

    @Test("a long run of acks keeps memory compact")
    func longRun() {
        var tracker = Tracker()
        for round in 0..<100 {
            for i in 0..<1000 { _ = tracker.published("\(round)-\(i)") }
            #expect(tracker.acked(tag: tracker.nextTag - 1, multiple: true).count == 1000)
        }
        #expect(tracker.outstandingCount == 0)
    }
}

@Suite("Backoff")
struct BackoffTests {
    @Test("delays double up to the maximum, with jitter between half and all of the ceiling")
    func growth() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        #expect(backoff.delay(attempt: 0, unitRandom: 1) == .milliseconds(100))
        #expect(backoff.delay(attempt: 0, unitRandom: 0) == .milliseconds(50))
        #expect(backoff.delay(attempt: 3, unitRandom: 1) == .milliseconds(800))
        #expect(backoff.delay(attempt: 10, unitRandom: 1) == .seconds(2))
        #expect(backoff.delay(attempt: 1000, unitRandom: 1) == .seconds(2))
        for _ in 0..<100 {
            let d = backoff.delay(attempt: 2)
            #expect(d >= .milliseconds(200) && d <= .milliseconds(400))
        }
    }
}
