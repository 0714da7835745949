import AMQP
import Foundation
import Testing

@Suite("AMQP against the real broker")
struct AMQPIntegrationTests {
    @Test("10,000 pipelined persistent publishes are all confirmed and all land")
    func pipelinedConfirms() async throws {
        let amqp = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("confirms")
        try await amqp.declareQueue(queue, durable: true)
        let body = OutgoingMessage(String(repeating: "x", count: 400), properties: .persistentJSON())
        let count = 10_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask { try await amqp.publish(body, exchange: "", routingKey: queue) }
            }
            try await group.waitForAll()
        }
        #expect(try await amqp.inspectQueue(queue).messageCount == count)
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test("acks sent together settle exactly the deliveries acked: one held back below them stays with the broker")
    func coalescedAcks() async throws {
        let amqp = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("acks")
        try await amqp.declareQueue(queue, durable: true)
        for index in 0..<20 {
            try await amqp.publish(
                OutgoingMessage("m-\(index)", properties: .persistentJSON(messageId: "m-\(index)")), exchange: "",
                routingKey: queue)
        }
        let consumer = try await amqp.consume(queue: queue, prefetch: 20)
        var deliveries: [Delivery] = []
        for try await delivery in consumer {
            deliveries.append(delivery)
            if deliveries.count == 20 { break }
        }
        // Everything but m-4 and m-15, in one burst and out of order.
        for (index, delivery) in deliveries.enumerated().reversed() where index != 4 && index != 15 { delivery.ack() }
        deliveries[15].ack()
        // m-4 was never acked: closing the connection returns it, and only it, to the queue.
        await amqp.close()
        let checker = try await TestEnvironment.amqp()
        #expect(try await checker.inspectQueue(queue).messageCount == 1)
        let again = try await checker.consume(queue: queue, prefetch: 1)
        for try await delivery in again {
            #expect(delivery.bodyString == "m-4")
            delivery.ack()
            break
        }
        await again.cancel()
        try await checker.deleteQueue(queue)
        await checker.close()
    }

    @Test("a publish to a missing exchange throws 404, and the next publish still works")
    func missingExchange() async throws {
        let amqp = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("after-404")
        try await amqp.declareQueue(queue)
        await #expect {
            try await amqp.publish(OutgoingMessage("lost"), exchange: "no-such-exchange-\(UUID())", routingKey: "x")
        } throws: { error in
            (error as? AMQPError)?.code == .channelClosed && (error as? AMQPError)?.replyCode == 404
        }
        try await amqp.publish(OutgoingMessage("kept"), exchange: "", routingKey: queue)
        #expect(try await amqp.inspectQueue(queue).messageCount == 1)
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test("an unroutable mandatory publish throws; a routable one in the same batch does not")
    func unroutableMandatory() async throws {
        let amqp = try await TestEnvironment.amqp()
        let exchange = TestEnvironment.uniqueName("mandatory")
        let queue = TestEnvironment.uniqueName("mandatory-q")
        try await amqp.declareExchange(exchange, type: .direct, durable: false, autoDelete: true)
        try await amqp.declareQueue(queue)
        try await amqp.bindQueue(queue, exchange: exchange, routingKey: "routed")
        func outcome(_ body: @Sendable () async throws -> Void) async -> (any Error)? {
            do { try await body() } catch { return error }
            return nil
        }
        async let routed = outcome {
            try await amqp.publish(
                OutgoingMessage("a", properties: .init(messageId: "1")), exchange: exchange, routingKey: "routed",
                mandatory: true)
        }
        async let unrouted = outcome {
            try await amqp.publish(
                OutgoingMessage("b", properties: .init(messageId: "2")), exchange: exchange, routingKey: "nowhere",
                mandatory: true)
        }
        let (routedError, unroutedError) = await (routed, unrouted)
        #expect(routedError == nil)
        let error = try #require(unroutedError as? AMQPError)
        #expect(error.code == .unroutable)
        #expect(error.replyCode == 312)
        // Without mandatory the broker drops it silently and still confirms.
        try await amqp.publish(OutgoingMessage("c"), exchange: exchange, routingKey: "nowhere")
        try await amqp.deleteQueue(queue)
        try await amqp.deleteExchange(exchange)
        await amqp.close()
    }

    @Test("nack with requeue redelivers with redelivered set")
    func nackRequeue() async throws {
        let amqp = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("nack")
        try await amqp.declareQueue(queue)
        try await amqp.publish(
            OutgoingMessage("again", properties: .init(messageId: "m-1")), exchange: "", routingKey: queue)
        let consumer = try await amqp.consume(queue: queue, prefetch: 1)
        var iterator = consumer.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(first.redelivered == false)
        first.nack(requeue: true)
        let second = try #require(try await iterator.next())
        #expect(second.redelivered == true)
        #expect(second.properties.messageId == "m-1")
        #expect(second.bodyString == "again")
        second.ack()
        await consumer.cancel()
        #expect(try await eventually { try await amqp.inspectQueue(queue).messageCount == 0 })
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test("reject dead-letters through x-dead-letter-exchange")
    func rejectDeadLetters() async throws {
        let amqp = try await TestEnvironment.amqp()
        let dead = TestEnvironment.uniqueName("dlx")
        let deadQueue = TestEnvironment.uniqueName("dlq")
        let queue = TestEnvironment.uniqueName("work")
        try await amqp.declareExchange(dead, type: .fanout, durable: false, autoDelete: true)
        try await amqp.declareQueue(deadQueue)
        try await amqp.bindQueue(deadQueue, exchange: dead, routingKey: "")
        try await amqp.declareQueue(queue, arguments: ["x-dead-letter-exchange": .string(dead)])
        try await amqp.publish(
            OutgoingMessage("poison", properties: .init(messageId: "p-1")), exchange: "", routingKey: queue)

        let consumer = try await amqp.consume(queue: queue, prefetch: 1)
        for try await delivery in consumer {
            delivery.reject(requeue: false)
            break
        }
        let deadConsumer = try await amqp.consume(queue: deadQueue, prefetch: 1)
        var iterator = deadConsumer.makeAsyncIterator()
        let deadLettered = try #require(try await iterator.next())
        #expect(deadLettered.properties.messageId == "p-1")
        #expect(deadLettered.bodyString == "poison")
        // RabbitMQ records why in x-death: a list of tables.
        guard case .array(let deaths)? = deadLettered.properties.headers["x-death"],
            case .table(let death)? = deaths.first
        else {
            Issue.record("no x-death header: \(deadLettered.properties.headers)")
            return
        }
        #expect(death["reason"]?.stringValue == "rejected")
        #expect(death["queue"]?.stringValue == queue)
        deadLettered.ack()
        try await amqp.deleteQueue(queue)
        try await amqp.deleteQueue(deadQueue)
        await amqp.close()
    }

    @Test("properties and headers with nested tables and arrays round-trip")
    func headersRoundTrip() async throws {
        let amqp = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("headers")
        try await amqp.declareQueue(queue)
        let headers: FieldTable = [
            "x-causation-id": "7b0e0b5e-8c1f-4f0e-9f7c-0d7c7b3b2a11",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "attempts": .int32(3),
            "big": .int64(Int64.max),
            "flag": .bool(true),
            "ratio": .double(0.25),
            "raw": .bytes([0, 1, 2, 255]),
            "when": .timestamp(Date(timeIntervalSince1970: 1_700_000_000)),
            "nested": .table([
                "level": .int16(2),
                "inner": .table(["deep": "yes", "list": .array([.int32(1), "two", .table(["three": .bool(false)])])]),
            ]),
            "empty": .table([:]),
            "nothing": .void,
            "unicode": "ünïcødé ✓",
        ]
        let properties = AMQPProperties(
            contentType: "application/json", headers: headers, deliveryMode: .persistent, priority: 3,
            correlationId: "order-1", replyTo: "replies", expiration: "60000", messageId: "id-1",
            timestamp: Date(timeIntervalSince1970: 1_700_000_123), type: "order.placed", appId: "depot")
        try await amqp.publish(OutgoingMessage("{}", properties: properties), exchange: "", routingKey: queue)
        let consumer = try await amqp.consume(queue: queue)
        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        #expect(delivery.properties == properties)
        #expect(delivery.properties.headers == headers)
        delivery.ack()
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test("a consumer sees exactly what was published, each once, under prefetch")
    func consumeAll() async throws {
        let amqp = try await TestEnvironment.amqp()
        let queue = TestEnvironment.uniqueName("consume")
        try await amqp.declareQueue(queue)
        let count = 2_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                group.addTask {
                    try await amqp.publish(
                        OutgoingMessage("\(i)", properties: .init(messageId: "\(i)")), exchange: "", routingKey: queue)
                }
            }
            try await group.waitForAll()
        }
        var seen = Set<String>()
        let consumer = try await amqp.consume(queue: queue, prefetch: 50)
        for try await delivery in consumer {
            seen.insert(try #require(delivery.properties.messageId))
            delivery.ack()
            if seen.count == count { break }
        }
        #expect(seen == Set((0..<count).map(String.init)))
        #expect(try await eventually { try await amqp.inspectQueue(queue).messageCount == 0 })
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test("a list of URLs is tried in turn: a dead first node does not stop the connection")
    func endpointList() async throws {
        var options = AMQPConfiguration.Options()
        options.initialConnectDeadline = .seconds(5)
        let amqp = try await AMQPConnection.connect(
            AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:1/%2F," + TestEnvironment.amqpURL, options: options))
        #expect(amqp.isConnected)
        #expect(try await amqp.exchangeExists("amq.topic"))
        await amqp.close()
        await #expect(throws: AMQPError.self) {
            try await amqp.publish(OutgoingMessage("after close"), exchange: "", routingKey: "nowhere")
        }
    }

    @Test("an unreachable broker fails the first connect after the deadline, naming the endpoint")
    func unreachable() async throws {
        var options = AMQPConfiguration.Options()
        options.initialConnectDeadline = .milliseconds(500)
        let started = ContinuousClock.now
        do {
            _ = try await AMQPConnection.connect(
                AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:1/%2F", options: options))
            Issue.record("connected to a closed port")
        } catch let error as AMQPError {
            #expect(error.code == .connectionFailed)
            #expect(error.context?.contains("127.0.0.1:1") == true)
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("wrong credentials fail with the broker's refusal")
    func wrongCredentials() async throws {
        var options = AMQPConfiguration.Options()
        options.initialConnectDeadline = .milliseconds(300)
        await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(
                AMQPConfiguration(url: "amqp://guest:wrong@127.0.0.1:5672/%2F", options: options))
        }
    }

    @Test("a passive declare of a missing queue is a 404, and the connection carries on")
    func inspectMissing() async throws {
        let amqp = try await TestEnvironment.amqp()
        await #expect {
            _ = try await amqp.inspectQueue("no-such-queue-\(UUID())")
        } throws: { ($0 as? AMQPError)?.replyCode == 404 }
        #expect(try await amqp.exchangeExists("amq.direct"))
        #expect(try await amqp.exchangeExists("no-such-\(UUID())") == false)
        await amqp.close()
    }
}
