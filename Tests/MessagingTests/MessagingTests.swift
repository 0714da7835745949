import DepotModel
import Testing

@testable import Messaging

@Suite("Messaging")
struct MessagingTests {
    @Test("retry holding queues are named after their queue and delay")
    func retryQueueNames() {
        let queue = QueueSpec(name: "depot.orders", handles: [.orderPlace])
        #expect(queue.retryQueue(after: .milliseconds(500)) == "depot.orders.retry.500ms")
        #expect(queue.retryQueue(after: .seconds(30)) == "depot.orders.retry.30s")
        #expect(queue.deadLetterQueue == "depot.orders.dead")
        #expect(queue.bindings == [.init(exchange: "depot.commands", routingKey: "order.place")])
    }

    @Test("a signal sent before anyone waits is kept, once")
    func wakeSignalKeepsOneSignal() async {
        let wake = WakeSignal()
        wake.signal()
        wake.signal()
        await wake.wait()  // returns at once
        let second = Task { await wake.wait() }
        try? await Task.sleep(for: .milliseconds(50))
        wake.signal()
        await second.value
    }

    @Test("waiting ends when the task is cancelled")
    func wakeSignalCancellation() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait() }
        waiter.cancel()
        await waiter.value
    }
}
