import CAMQP
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Observable state of a connection, shared with any thread.
final class ConnectionStats: Sendable {
    let connected = Atomic<Bool>(false)
    let reconnections = Atomic<Int>(0)
}

/// A declaration the connection repeats after every reconnection.
enum TopologyItem: Equatable {
    case exchange(name: String, type: String, durable: Bool, autoDelete: Bool, internal: Bool, arguments: FieldTable)
    case queue(name: String, durable: Bool, exclusive: Bool, autoDelete: Bool, arguments: FieldTable)
    case binding(queue: String, exchange: String, routingKey: String, arguments: FieldTable)
}

/// The thread that owns one librabbitmq connection, and that connection's state (Postgres has
/// a `ConnectionThread` in the same role).
///
/// librabbitmq's connection state may be used by one thread at a time; this class is created
/// on the connection thread and never leaves it. Swift code reaches it only through
/// `CommandQueue`. Channel 1 carries synchronous RPCs (declares), channel 2 publishes in
/// confirm mode, and every consumer has a channel of its own, so a channel error in one of
/// them (a 404 on a declare, say) does not disturb the others.
final class ConnectionThread {
    static let adminChannel: amqp_channel_t = 1
    /// Counts openings of the admin channel, so a basic.get tag is settled only where it is valid.
    private var adminEpoch: UInt64 = 0
    static let publishChannel: amqp_channel_t = 2

    private struct ConsumerState {
        var queue: String
        var tag: String
        var prefetch: UInt16
        var arguments: FieldTable
        var deliveries: AsyncThrowingStream<Delivery, any Error>.Continuation
        var epoch: UInt64 = 0
        var cancelled = false
        /// Delivery tags of this epoch the broker holds unacknowledged: what a `multiple` ack
        /// would also settle, so acks are coalesced only below the lowest one not being acked.
        var unsettled: Set<UInt64> = []
    }

    /// Plain acks taken from the command queue, sent together after it is drained.
    private var pendingAcks: [amqp_channel_t: [UInt64]] = [:]

    let configuration: AMQPConfiguration
    let logger: Logger
    let commands: CommandQueue
    let stats: ConnectionStats

    private var conn: amqp_connection_state_t?
    private let arena = ScratchArena()
    private var tracker = ConfirmTracker<PendingPublish>()
    private var waiters: [UInt64: PublishWaiter] = [:]
    private var unsent: [PendingPublish] = []
    private var unsentHead = 0
    private var consumers: [amqp_channel_t: ConsumerState] = [:]
    private var nextConsumerChannel: amqp_channel_t = 3
    private var topology: [TopologyItem] = []
    private var epochCounter: UInt64 = 0
    private var closing: CheckedContinuation<Void, Never>?
    private var isClosing = false
    private var everConnected = false
    private var endpointIndex = 0
    private var nextDeadlineCheck = ContinuousClock.now
    /// RPCs asked for while disconnected wait here (until `rpcTimeout`) for the next connection.
    private var deferredRPCs: [(body: @Sendable (ConnectionThread) -> Void, deadline: ContinuousClock.Instant)] = []
    /// A connection-level failure seen inside a command, raised after the command returns.
    var pendingConnectionError: AMQPError?

    init(configuration: AMQPConfiguration, logger: Logger, commands: CommandQueue, stats: ConnectionStats) {
        self.configuration = configuration
        self.logger = logger
        self.commands = commands
        self.stats = stats
    }

    // MARK: - The thread's loop

    /// Runs until `close`. `firstConnection` is resumed after the first successful connection, or
    /// with the last error once `initialConnectDeadline` has passed without one (the loop then ends).
    func run(firstConnection: CheckedContinuation<Void, any Error>) {
        var firstConnection: CheckedContinuation<Void, any Error>? = firstConnection
        let startDeadline = ContinuousClock.now + configuration.options.initialConnectDeadline
        var attempt = 0
        while !isClosing {
            if conn == nil {
                do {
                    try connect()
                    attempt = 0
                    firstConnection?.resume()
                    firstConnection = nil
                } catch {
                    if !everConnected && ContinuousClock.now >= startDeadline {
                        firstConnection?.resume(throwing: error)
                        firstConnection = nil
                        break
                    }
                    let delay = configuration.options.reconnectBackoff.delay(attempt: attempt)
                    attempt += 1
                    logger.debug(
                        "amqp connect failed, retrying",
                        metadata: ["error": "\(String(reflecting: error))", "delay": "\(delay)"])
                    idle(for: delay)
                    continue
                }
            }
            do {
                try processCommands()
                try readFrames()
                expireDeadlines()
                if !isClosing { waitForActivity() }
            } catch {
                connectionLost(error)
            }
        }
        shutDown()
    }

    private func processCommands() throws(AMQPError) {
        defer { try? flushAcks() }  // every drain ends with its acks sent, wherever it is called from
        for command in commands.takeAll() {
            // Acks wait for the end of the drain; a nack, reject, cancel or close sends them first.
            switch command {
            case .settle(let settlement) where settlement.kind == .ack && !settlement.multiple: break
            case .publish, .perform: break
            default: try flushAcks()
            }
            switch command {
            case .publish(let publish, let waiter):
                waiters[publish.id] = waiter
                unsent.append(publish)
            case .settle(let settlement) where settlement.kind == .ack && !settlement.multiple:
                if isCurrent(settlement) { pendingAcks[settlement.channel, default: []].append(settlement.tag) }
            case .settle(let settlement):
                try settle(settlement)
            case .perform(let body):
                guard conn != nil else {
                    deferredRPCs.append((body, ContinuousClock.now + configuration.options.rpcTimeout))
                    continue
                }
                body(self)
                if let error = pendingConnectionError {
                    pendingConnectionError = nil
                    throw error
                }
            case .consume(let registration):
                try register(registration)
            case .cancelConsumer(let tag, let done):
                try cancelConsumer(tag: tag)
                done?.resume()
            case .close(let done):
                closing = done
                isClosing = true
            }
        }
        try flushUnsent()
    }

    /// Sleeps until a command arrives, the socket has data, or a timer is due.
    private func waitForActivity() {
        guard let conn, commands.prepareToSleep() else { return }
        let heartbeatMs = Int32(clamping: configuration.options.heartbeat.components.seconds * 250)
        var timeout: Int32 = waiters.isEmpty ? 200 : 50
        if heartbeatMs > 0 { timeout = min(timeout, heartbeatMs) }
        var fds = [
            pollfd(fd: amqp_get_sockfd(conn), events: Int16(POLLIN), revents: 0),
            pollfd(fd: commands.wakeFileDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        _ = poll(&fds, 2, timeout)
        commands.didWake()
    }

    /// Waits out a reconnection delay while still taking commands (publishes queue up meanwhile).
    private func idle(for delay: Duration) {
        let until = ContinuousClock.now + delay
        while !isClosing && ContinuousClock.now < until {
            // Not connected: nothing can fail at connection level.
            do { try processCommands() } catch {}
            expireDeadlines()
            guard !isClosing, commands.prepareToSleep() else { continue }
            let remaining = until - ContinuousClock.now
            let ms = Int32(
                clamping: max(
                    1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            var fd = pollfd(fd: commands.wakeFileDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, min(ms, 100))
            commands.didWake()
        }
    }

    // MARK: - Connecting

    private func connect() throws(AMQPError) {
        let endpoints = configuration.endpoints
        var lastError = AMQPError(.connectionFailed, replyText: "no endpoint")
        for _ in 0..<endpoints.count {
            let endpoint = endpoints[endpointIndex % endpoints.count]
            endpointIndex += 1
            do {
                try open(endpoint)
                everConnected = true
                stats.connected.store(true, ordering: .releasing)
                logger.debug("amqp connected", metadata: ["endpoint": "\(endpoint)"])
                return
            } catch {
                if let conn { amqp_destroy_connection(conn) }
                conn = nil
                lastError = AMQPError(
                    .connectionFailed, replyCode: error.replyCode, replyText: error.replyText,
                    libraryStatus: error.libraryStatus, context: "connecting to \(endpoint)", underlying: error)
            }
        }
        throw lastError
    }

    private func open(_ endpoint: AMQPEndpoint) throws(AMQPError) {
        guard let state = amqp_new_connection() else { throw AMQPError(.library, replyText: "out of memory") }
        conn = state
        guard let socket = amqp_tcp_socket_new(state) else {
            throw AMQPError(.library, replyText: "socket allocation failed")
        }
        var connectTimeout = timeval(configuration.options.connectTimeout)
        try check(status: amqp_set_handshake_timeout(state, &connectTimeout), context: "setting the handshake timeout")
        try check(
            status: amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &connectTimeout),
            context: "TCP connect")
        let reply = CAMQP_login_plain(
            state, endpoint.vhost, 0, configuration.options.frameMax,
            Int32(configuration.options.heartbeat.components.seconds), endpoint.user, endpoint.password)
        try check(reply: reply, context: "login as \(endpoint.user) to vhost \(endpoint.vhost)")
        var rpcTimeout = timeval(configuration.options.rpcTimeout)
        try check(status: amqp_set_rpc_timeout(state, &rpcTimeout), context: "setting the RPC timeout")

        amqp_channel_open(state, Self.adminChannel)
        try check(reply: amqp_get_rpc_reply(state), context: "channel.open")
        adminEpoch += 1
        amqp_channel_open(state, Self.publishChannel)
        try check(reply: amqp_get_rpc_reply(state), context: "channel.open")
        amqp_confirm_select(state, Self.publishChannel)
        try check(reply: amqp_get_rpc_reply(state), context: "confirm.select")

        for item in topology { try declare(item) }
        consumers = consumers.filter { !$0.value.cancelled }  // a cancelled consumer stays cancelled
        for channel in consumers.keys.sorted() { try startConsumer(on: channel) }
        let waiting = deferredRPCs
        deferredRPCs.removeAll()
        for rpc in waiting {
            rpc.body(self)
            if let error = pendingConnectionError {
                pendingConnectionError = nil
                throw error
            }
        }

        if everConnected {
            stats.reconnections.add(1, ordering: .relaxed)
            logger.info("amqp reconnected", metadata: ["endpoint": "\(endpoint)"])
        }
    }

    /// The socket or the server ended the connection: keep every unconfirmed publish for the
    /// next connection (consumers' inboxes absorb the duplicates this may cause).
    private func connectionLost(_ error: any Error) {
        logger.warning("amqp connection lost", metadata: ["error": "\(String(reflecting: error))"])
        if let conn { amqp_destroy_connection(conn) }
        conn = nil
        stats.connected.store(false, ordering: .releasing)
        requeueOutstanding(tracker.reset())
        for channel in consumers.keys { consumers[channel]?.epoch = 0 }
    }

    private func requeueOutstanding(_ publishes: [PendingPublish]) {
        guard !publishes.isEmpty else { return }
        unsent = publishes + unsent[unsentHead...]
        unsentHead = 0
    }

    private func shutDown() {
        if let conn {
            // Give outstanding confirms a moment so that callers learn their publish's fate.
            let deadline = ContinuousClock.now + configuration.options.closeGracePeriod
            do {
                try flushUnsent()
                while tracker.outstandingCount > 0 && ContinuousClock.now < deadline {
                    try readFrames()
                    if tracker.outstandingCount > 0 { waitForActivity() }
                }
            } catch {
                logger.debug("amqp close: flushing failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            if self.conn != nil {
                _ = amqp_connection_close(conn, AMQP_REPLY_SUCCESS)
                amqp_destroy_connection(conn)
            }
            self.conn = nil
        }
        stats.connected.store(false, ordering: .releasing)
        let closed = AMQPError(.closed, context: "the connection was closed")
        for command in commands.closeAndDrain() {
            switch command {
            case .publish(_, let waiter): waiter.complete(closed)
            case .perform(let body): body(self)  // sees conn == nil and fails with .closed
            case .consume(let registration):
                registration.ready.resume(throwing: closed)
                registration.deliveries.finish()
            case .cancelConsumer(_, let done): done?.resume()
            case .close(let done): done?.resume()
            case .settle: break
            }
        }
        for rpc in deferredRPCs { rpc.body(self) }  // conn is nil: each fails with .closed
        deferredRPCs.removeAll()
        for waiter in waiters.values { waiter.complete(closed) }
        waiters.removeAll()
        for consumer in consumers.values { consumer.deliveries.finish() }
        consumers.removeAll()
        closing?.resume()
    }

    // MARK: - Publishing

    private func flushUnsent() throws(AMQPError) {
        guard conn != nil else { return }
        while unsentHead < unsent.count {
            let publish = unsent[unsentHead]
            // A publish whose caller has given up (deadline passed) is not sent at all.
            if waiters[publish.id] != nil { try send(publish) }
            unsentHead += 1
        }
        unsent.removeAll(keepingCapacity: true)
        unsentHead = 0
    }

    private func send(_ publish: PendingPublish) throws(AMQPError) {
        guard let conn else { throw AMQPError(.connectionClosed) }
        defer { arena.reset() }
        var properties = arena.properties(publish.message.properties)
        let exchange = arena.bytes(publish.exchange)
        let routingKey = arena.bytes(publish.routingKey)
        let status = publish.message.body.withUnsafeBytes { body in
            amqp_basic_publish(
                conn, Self.publishChannel, exchange, routingKey, publish.mandatory ? 1 : 0, 0, &properties,
                amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
        }
        try check(status: status, context: "basic.publish to \(publish.exchange)")
        let route =
            publish.mandatory
            ? ConfirmTracker<PendingPublish>.Route(
                exchange: publish.exchange, routingKey: publish.routingKey,
                messageId: publish.message.properties.messageId)
            : nil
        _ = tracker.published(publish, mandatoryRoute: route)
    }

    private func resolve(_ settled: [(PendingPublish, ConfirmTracker<PendingPublish>.Outcome)]) {
        for (publish, outcome) in settled {
            guard let waiter = waiters.removeValue(forKey: publish.id) else { continue }
            switch outcome {
            case .confirmed:
                waiter.complete(nil)
            case .nacked:
                waiter.complete(AMQPError(.publishNacked, context: "publish to \(publish.exchange)"))
            case .returned(let code, let text):
                waiter.complete(
                    AMQPError(
                        .unroutable, replyCode: code, replyText: text,
                        context: "mandatory publish to \(publish.exchange) with key \(publish.routingKey)"))
            }
        }
    }

    private func expireDeadlines() {
        let now = ContinuousClock.now
        if conn == nil, deferredRPCs.contains(where: { $0.deadline <= now }) {
            // Still disconnected after rpcTimeout: these fail ("not connected").
            let expired = deferredRPCs.filter { $0.deadline <= now }
            deferredRPCs.removeAll { $0.deadline <= now }
            for rpc in expired { rpc.body(self) }
        }
        guard now >= nextDeadlineCheck, !waiters.isEmpty else { return }
        nextDeadlineCheck = now + .milliseconds(20)
        for (id, waiter) in waiters {
            if let deadline = waiter.deadline, deadline <= now {
                waiters.removeValue(forKey: id)
                waiter.complete(AMQPError(.timeout, context: "waiting for a publisher confirm"))
            }
        }
    }

    // MARK: - Reading frames

    private func readFrames() throws(AMQPError) {
        guard let conn else { return }
        var frame = amqp_frame_t()
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        var handled = 0
        while true {
            let status = amqp_simple_wait_frame_noblock(conn, &frame, &zero)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            try check(status: status, context: "reading from the broker")
            try handle(frame)
            handled += 1
            // Keep acks and publishes moving during a long burst of deliveries.
            if handled % 128 == 0 { try processCommands() }
            if self.conn == nil { return }
        }
        amqp_maybe_release_buffers(conn)
    }

    private func handle(_ frame: amqp_frame_t) throws(AMQPError) {
        guard frame.frame_type == AMQP_FRAME_METHOD, let conn else { return }
        let method = frame.payload.method
        switch method.id {
        case AMQP_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            resolve(tracker.acked(tag: ack.delivery_tag, multiple: ack.multiple != 0))
        case AMQP_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            resolve(tracker.nacked(tag: nack.delivery_tag, multiple: nack.multiple != 0))
        case AMQP_BASIC_RETURN_METHOD:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            var message = amqp_message_t()
            try check(reply: amqp_read_message(conn, frame.channel, &message, 0), context: "reading a returned message")
            defer { amqp_destroy_message(&message) }
            let properties = decodeProperties(message.properties)
            tracker.returned(
                .init(
                    exchange: String(amqpBytes: returned.exchange), routingKey: String(amqpBytes: returned.routing_key),
                    messageId: properties.messageId),
                replyCode: returned.reply_code, replyText: String(amqpBytes: returned.reply_text))
        case AMQP_BASIC_DELIVER_METHOD:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            var message = amqp_message_t()
            try check(reply: amqp_read_message(conn, frame.channel, &message, 0), context: "reading a delivery")
            defer { amqp_destroy_message(&message) }
            guard let consumer = consumers[frame.channel] else { return }
            guard !consumer.cancelled else {
                // Sent before the broker saw basic.cancel: back to the queue for another consumer.
                try check(
                    status: amqp_basic_reject(conn, frame.channel, deliver.delivery_tag, 1),
                    context: "returning a delivery to a cancelled consumer's queue")
                return
            }
            consumers[frame.channel]?.unsettled.insert(deliver.delivery_tag)
            let delivery = Delivery(
                body: [UInt8](amqpBytes: message.body), properties: decodeProperties(message.properties),
                exchange: String(amqpBytes: deliver.exchange), routingKey: String(amqpBytes: deliver.routing_key),
                redelivered: deliver.redelivered != 0, deliveryTag: deliver.delivery_tag, consumerTag: consumer.tag,
                queue: consumer.queue,
                settler: Settler(commands: commands, channel: frame.channel, epoch: consumer.epoch))
            consumer.deliveries.yield(delivery)
        case AMQP_BASIC_CANCEL_METHOD:
            // The server cancelled a consumer, e.g. because its queue was deleted.
            if let consumer = consumers.removeValue(forKey: frame.channel) {
                consumer.deliveries.finish(
                    throwing: AMQPError(
                        .consumerCancelled, context: "the broker cancelled the consumer of \(consumer.queue)"))
                _ = amqp_channel_close(conn, frame.channel, AMQP_REPLY_SUCCESS)
            }
        case AMQP_CHANNEL_CLOSE_METHOD:
            let error = serverError(method: method, context: "channel \(frame.channel)")
            var ok = amqp_channel_close_ok_t(dummy: 0)
            try check(
                status: amqp_send_method(conn, frame.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                context: "channel.close-ok")
            try channelClosed(frame.channel, by: error)
        case AMQP_CONNECTION_CLOSE_METHOD:
            let error = serverError(method: method, context: "the broker closed the connection")
            var ok = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
            throw error
        case AMQP_CONNECTION_BLOCKED_METHOD:
            logger.warning("the broker blocked publishing (resource alarm)")
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            logger.info("the broker unblocked publishing")
        default:
            break
        }
    }

    private func channelClosed(_ channel: amqp_channel_t, by error: AMQPError) throws(AMQPError) {
        guard let conn else { return }
        logger.debug(
            "amqp channel closed by the broker",
            metadata: ["channel": "\(channel)", "error": "\(String(reflecting: error))"])
        switch channel {
        case Self.adminChannel:
            amqp_channel_open(conn, channel)
            try check(reply: amqp_get_rpc_reply(conn), context: "channel.open")
        case Self.publishChannel:
            // Fail the publishes to the exchange the broker named (404 "no exchange 'x'");
            // send the others again on the new channel.
            let culprit = error.replyText.flatMap(missingExchange(in:))
            var retry: [PendingPublish] = []
            for publish in tracker.reset() {
                if culprit == nil || culprit == publish.exchange {
                    waiters.removeValue(forKey: publish.id)?.complete(error)
                } else {
                    retry.append(publish)
                }
            }
            requeueOutstanding(retry)
            amqp_channel_open(conn, channel)
            try check(reply: amqp_get_rpc_reply(conn), context: "channel.open")
            amqp_confirm_select(conn, channel)
            try check(reply: amqp_get_rpc_reply(conn), context: "confirm.select")
        default:
            guard var consumer = consumers[channel] else { return }
            if consumer.cancelled {
                consumers.removeValue(forKey: channel)
                return
            }
            consumer.epoch = 0
            consumers[channel] = consumer
            do {
                try startConsumer(on: channel)
            } catch  where !error.isConnectionLevel {
                consumers.removeValue(forKey: channel)
                consumer.deliveries.finish(throwing: error)
            }
        }
    }

    // MARK: - Consumers

    private func register(_ registration: ConsumerRegistration) throws(AMQPError) {
        let channel = nextConsumerChannel
        nextConsumerChannel += 1
        consumers[channel] = ConsumerState(
            queue: registration.queue, tag: registration.tag, prefetch: registration.prefetch,
            arguments: registration.arguments, deliveries: registration.deliveries)
        guard conn != nil else {
            registration.ready.resume()  // starts on the next connection
            return
        }
        do {
            try startConsumer(on: channel)
            registration.ready.resume()
        } catch {
            if !error.isConnectionLevel { consumers.removeValue(forKey: channel) }
            registration.ready.resume(throwing: error)
            registration.deliveries.finish(throwing: error)
            if error.isConnectionLevel { throw error }
        }
    }

    /// Opens the consumer's channel, sets its prefetch and starts basic.consume.
    private func startConsumer(on channel: amqp_channel_t) throws(AMQPError) {
        guard let conn, var consumer = consumers[channel] else { return }
        amqp_channel_open(conn, channel)
        try check(reply: amqp_get_rpc_reply(conn), context: "channel.open")
        amqp_basic_qos(conn, channel, 0, consumer.prefetch, 0)
        try checkChannelReply(channel, context: "basic.qos")
        defer { arena.reset() }
        amqp_basic_consume(
            conn, channel, arena.bytes(consumer.queue), arena.bytes(consumer.tag), 0, 0, 0,
            arena.table(consumer.arguments))
        try checkChannelReply(channel, context: "basic.consume on \(consumer.queue)")
        epochCounter += 1
        consumer.epoch = epochCounter
        consumer.unsettled = []
        consumers[channel] = consumer
        pendingAcks[channel] = nil
    }

    private func cancelConsumer(tag: String) throws(AMQPError) {
        guard let (channel, consumer) = consumers.first(where: { $0.value.tag == tag }), !consumer.cancelled else {
            return
        }
        consumers[channel]?.cancelled = true
        consumer.deliveries.finish()
        // The channel stays open so that deliveries already received can still be settled.
        guard let conn, consumer.epoch != 0 else { return }
        defer { arena.reset() }
        amqp_basic_cancel(conn, channel, arena.bytes(tag))
        try checkChannelReply(channel, context: "basic.cancel")
    }

    /// True when the settlement is for the consumer's current channel; one from an earlier
    /// channel or connection is dropped: the broker has requeued that delivery already.
    private func isCurrent(_ settlement: Settlement) -> Bool {
        guard conn != nil, let consumer = consumers[settlement.channel] else { return false }
        return consumer.epoch == settlement.epoch && consumer.epoch != 0
    }

    /// Sends the acks taken since the last flush: those below the lowest delivery still
    /// unsettled go as ONE `multiple` ack (one frame, one packet, one broker step instead of a
    /// batch's worth), the rest one by one.
    private func flushAcks() throws(AMQPError) {
        guard !pendingAcks.isEmpty, let conn else { return }
        for channel in Array(pendingAcks.keys) {
            guard let tags = pendingAcks.removeValue(forKey: channel), var consumer = consumers[channel] else {
                continue
            }
            let acking = Set(tags)
            let lowestKept = consumer.unsettled.lazy.filter { !acking.contains($0) }.min() ?? .max
            let covered = tags.filter { $0 < lowestKept }
            var individually = tags.filter { $0 >= lowestKept }
            if covered.count > 1, let highest = covered.max() {
                try check(status: amqp_basic_ack(conn, channel, highest, 1), context: "settling deliveries")
            } else {
                individually += covered
            }
            for tag in individually {
                try check(status: amqp_basic_ack(conn, channel, tag, 0), context: "settling a delivery")
            }
            consumer.unsettled.subtract(acking)
            consumers[channel] = consumer
        }
    }

    private func settle(_ settlement: Settlement) throws(AMQPError) {
        guard let conn, isCurrent(settlement) else { return }
        if settlement.multiple {
            let kept = consumers[settlement.channel]!.unsettled.filter { $0 > settlement.tag }
            consumers[settlement.channel]?.unsettled = kept
        } else {
            consumers[settlement.channel]?.unsettled.remove(settlement.tag)
        }
        let status: Int32
        switch settlement.kind {
        case .ack: status = amqp_basic_ack(conn, settlement.channel, settlement.tag, settlement.multiple ? 1 : 0)
        case .nack:
            status = amqp_basic_nack(
                conn, settlement.channel, settlement.tag, settlement.multiple ? 1 : 0, settlement.requeue ? 1 : 0)
        case .reject: status = amqp_basic_reject(conn, settlement.channel, settlement.tag, settlement.requeue ? 1 : 0)
        }
        try check(status: status, context: "settling a delivery")
    }

    // MARK: - Synchronous RPCs on the admin channel (called from `.perform` bodies)

    /// Checks the reply of the RPC just made on `channel`; a channel error is answered with
    /// close-ok and the channel is reopened, then the error is thrown.
    private func checkChannelReply(_ channel: amqp_channel_t, context: String) throws(AMQPError) {
        guard let conn else { throw AMQPError(.connectionClosed, context: context) }
        let reply = amqp_get_rpc_reply(conn)
        do {
            try check(reply: reply, context: context)
        } catch {
            if error.code == .channelClosed {
                var ok = amqp_channel_close_ok_t(dummy: 0)
                try check(
                    status: amqp_send_method(conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok),
                    context: "channel.close-ok")
                if channel == Self.adminChannel {
                    adminEpoch += 1  // messages fetched on the old channel can no longer be settled
                    amqp_channel_open(conn, channel)
                    try check(reply: amqp_get_rpc_reply(conn), context: "channel.open")
                }
            } else if error.isConnectionLevel {
                pendingConnectionError = error
            }
            throw error
        }
    }

    private func requireConnection(_ context: String) throws(AMQPError) -> amqp_connection_state_t {
        guard let conn else {
            throw AMQPError(isClosing ? .closed : .connectionClosed, context: "\(context): not connected")
        }
        return conn
    }

    func declare(_ item: TopologyItem, passive: Bool = false) throws(AMQPError) {
        let conn = try requireConnection("declare")
        defer { arena.reset() }
        switch item {
        case .exchange(let name, let type, let durable, let autoDelete, let isInternal, let arguments):
            amqp_exchange_declare(
                conn, Self.adminChannel, arena.bytes(name), arena.bytes(type), passive ? 1 : 0, durable ? 1 : 0,
                autoDelete ? 1 : 0, isInternal ? 1 : 0, arena.table(arguments))
            try checkChannelReply(Self.adminChannel, context: "exchange.declare \(name)")
        case .queue:
            _ = try declareQueue(item, passive: passive)
        case .binding(let queue, let exchange, let routingKey, let arguments):
            amqp_queue_bind(
                conn, Self.adminChannel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey),
                arena.table(arguments))
            try checkChannelReply(Self.adminChannel, context: "queue.bind \(queue) to \(exchange)")
        }
    }

    func declareQueue(_ item: TopologyItem, passive: Bool) throws(AMQPError) -> QueueInfo {
        guard case .queue(let name, let durable, let exclusive, let autoDelete, let arguments) = item else {
            preconditionFailure("declareQueue takes a queue")
        }
        let conn = try requireConnection("queue.declare")
        defer { arena.reset() }
        let ok = amqp_queue_declare(
            conn, Self.adminChannel, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0, exclusive ? 1 : 0,
            autoDelete ? 1 : 0, arena.table(arguments))
        try checkChannelReply(Self.adminChannel, context: "queue.declare \(name)")
        guard let ok else { throw AMQPError(.library, context: "queue.declare \(name) returned nothing") }
        return QueueInfo(
            name: String(amqpBytes: ok.pointee.queue), messageCount: Int(ok.pointee.message_count),
            consumerCount: Int(ok.pointee.consumer_count))
    }

    /// Declares and remembers the item, so that it is declared again after a reconnection.
    func declareAndRecord(_ item: TopologyItem) throws(AMQPError) -> QueueInfo? {
        var info: QueueInfo?
        if case .queue = item { info = try declareQueue(item, passive: false) } else { try declare(item) }
        if !topology.contains(item) { topology.append(item) }
        return info
    }

    func deleteQueue(_ name: String) throws(AMQPError) -> Int {
        let conn = try requireConnection("queue.delete")
        defer { arena.reset() }
        let ok = amqp_queue_delete(conn, Self.adminChannel, arena.bytes(name), 0, 0)
        try checkChannelReply(Self.adminChannel, context: "queue.delete \(name)")
        topology.removeAll {
            switch $0 {
            case .queue(let queue, _, _, _, _), .binding(let queue, _, _, _): queue == name
            default: false
            }
        }
        return Int(ok?.pointee.message_count ?? 0)
    }

    func deleteExchange(_ name: String) throws(AMQPError) {
        let conn = try requireConnection("exchange.delete")
        defer { arena.reset() }
        amqp_exchange_delete(conn, Self.adminChannel, arena.bytes(name), 0)
        try checkChannelReply(Self.adminChannel, context: "exchange.delete \(name)")
        topology.removeAll {
            switch $0 {
            case .exchange(let exchange, _, _, _, _, _), .binding(_, let exchange, _, _): exchange == name
            default: false
            }
        }
    }

    func purgeQueue(_ name: String) throws(AMQPError) -> Int {
        let conn = try requireConnection("queue.purge")
        defer { arena.reset() }
        let ok = amqp_queue_purge(conn, Self.adminChannel, arena.bytes(name))
        try checkChannelReply(Self.adminChannel, context: "queue.purge \(name)")
        return Int(ok?.pointee.message_count ?? 0)
    }

    /// basic.get on the admin channel without auto-ack: the message stays unacknowledged until
    /// `settleFetched`, and goes back to its queue if the connection closes first.
    func basicGet(_ queue: String) throws(AMQPError) -> FetchedMessage? {
        let conn = try requireConnection("basic.get")
        defer { arena.reset() }
        let reply = amqp_basic_get(conn, Self.adminChannel, arena.bytes(queue), 0)
        try checkChannelReply(Self.adminChannel, context: "basic.get \(queue)")
        guard reply.reply.id == AMQP_BASIC_GET_OK_METHOD,
            let ok = reply.reply.decoded?.assumingMemoryBound(to: amqp_basic_get_ok_t.self)
        else { return nil }
        let tag = ok.pointee.delivery_tag
        let exchange = String(amqpBytes: ok.pointee.exchange)
        let routingKey = String(amqpBytes: ok.pointee.routing_key)
        let remaining = Int(ok.pointee.message_count)
        let redelivered = ok.pointee.redelivered != 0
        var message = amqp_message_t()
        let read = amqp_read_message(conn, Self.adminChannel, &message, 0)
        try check(reply: read, context: "basic.get \(queue): reading the message")
        defer { amqp_destroy_message(&message) }
        return FetchedMessage(
            body: [UInt8](amqpBytes: message.body), properties: decodeProperties(message.properties),
            exchange: exchange,
            routingKey: routingKey, redelivered: redelivered, remaining: remaining, deliveryTag: tag, epoch: adminEpoch)
    }

    /// Acks, or returns to the queue, a message from `basicGet` (only on the connection that got it).
    func settleFetched(_ message: FetchedMessage, ack: Bool) throws(AMQPError) {
        let conn = try requireConnection("basic.ack")
        guard message.epoch == adminEpoch else {
            throw AMQPError(
                .connectionClosed,
                context: "the connection that fetched the message is gone; the broker has requeued it")
        }
        let status =
            ack
            ? amqp_basic_ack(conn, Self.adminChannel, message.deliveryTag, 0)
            : amqp_basic_nack(conn, Self.adminChannel, message.deliveryTag, 0, 1)
        try check(status: status, context: ack ? "basic.ack" : "basic.nack")
    }
}

private func missingExchange(in replyText: String) -> String? {
    guard let start = replyText.range(of: "no exchange '"),
        let end = replyText[start.upperBound...].range(of: "' in vhost")
    else { return nil }
    return String(replyText[start.upperBound..<end.lowerBound])
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
