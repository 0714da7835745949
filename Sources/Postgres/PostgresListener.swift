import CLibPQ
import Foundation
import Logging
import Synchronization

/// One NOTIFY received on a LISTEN channel.
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// True for the notification the listener makes up after (re)connecting: notifications sent
    /// while it was away are lost, so a reader should look again for work it may have missed.
    public var mayHaveMissedNotifications: Bool
}

/// LISTENs on channels from a dedicated connection and thread, as an AsyncSequence.
///
/// The thread owns its `PGconn`, waits in `poll` on the socket, and reconnects with backoff
/// when the server goes away; after every (re)connection it yields one notification per
/// channel with `mayHaveMissedNotifications` set (the first one too, so that a reader starting
/// up scans once). The sequence ends when the reader stops iterating.
public struct PostgresNotifications: AsyncSequence, Sendable {
    public typealias Element = PostgresNotification
    let stream: AsyncStream<PostgresNotification>

    public init(
        configuration: PostgresConfiguration, channels: [String],
        logger: Logger = Logger(label: "depot.postgres.listen")
    ) {
        let (stream, continuation) = AsyncStream<PostgresNotification>.makeStream(
            bufferingPolicy: .bufferingNewest(10_000))
        let stop = StopFlag()
        continuation.onTermination = { _ in stop.set() }
        let thread = Thread {
            ListenLoop(
                configuration: configuration, channels: channels, logger: logger, continuation: continuation, stop: stop
            ).run()
        }
        thread.name = "postgres-listen"
        thread.start()
        self.stream = stream
    }

    public func makeAsyncIterator() -> AsyncStream<PostgresNotification>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}

final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}

/// The listener's thread: owns the connection from start to end.
private struct ListenLoop {
    let configuration: PostgresConfiguration
    let channels: [String]
    let logger: Logger
    let continuation: AsyncStream<PostgresNotification>.Continuation
    let stop: StopFlag

    func run() {
        var attempt = 0
        while !stop.isSet {
            guard let handle = connect() else {
                let delay = min(5.0, 0.1 * Double(1 << min(attempt, 6))) * Double.random(in: 0.5...1)
                attempt += 1
                sleep(seconds: delay)
                continue
            }
            attempt = 0
            for channel in channels {
                continuation.yield(
                    PostgresNotification(channel: channel, payload: "", mayHaveMissedNotifications: true))
            }
            receive(on: handle)
            PQfinish(handle)
        }
        continuation.finish()
    }

    private func connect() -> OpaquePointer? {
        let handle: OpaquePointer
        do { handle = try PostgresConnection.openHandle(configuration) } catch {
            logger.debug("listen: connect failed", metadata: ["error": "\(error.message)"])
            return nil
        }
        for channel in channels {
            // LISTEN takes an identifier, not a parameter: quote it as one.
            let quoted = "\"" + channel.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            let result = PQexec(handle, "LISTEN \(quoted)")
            let ok = result != nil && PQresultStatus(result) == PGRES_COMMAND_OK
            PQclear(result)
            guard ok else {
                PQfinish(handle)
                return nil
            }
        }
        return handle
    }

    /// Returns when the connection fails or the reader has gone.
    private func receive(on handle: OpaquePointer) {
        while !stop.isSet {
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 200)
            if ready < 0 && errno != EINTR { return }
            if ready > 0 {
                guard PQconsumeInput(handle) == 1 else {
                    logger.debug("listen: connection lost, reconnecting")
                    return
                }
            }
            while let notify = PQnotifies(handle) {
                let notification = PostgresNotification(
                    channel: String(cString: notify.pointee.relname), payload: String(cString: notify.pointee.extra),
                    mayHaveMissedNotifications: false)
                PQfreemem(notify)
                continuation.yield(notification)
            }
            if PQstatus(handle) != CONNECTION_OK { return }
        }
    }

    private func sleep(seconds: Double) {
        let until = Date().addingTimeInterval(seconds)
        while !stop.isSet && Date() < until { Thread.sleep(forTimeInterval: 0.05) }
    }
}
