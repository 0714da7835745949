import AMQP
import Foundation
import Logging
import Postgres
import Synchronization
import Testing

/// The one way tests reach the real broker and database.
///
/// URLs come from `DEPOT_AMQP_URL` and `DEPOT_DATABASE_URL` (loopback defaults, as
/// `scripts/dev test` starts them). A server that cannot be reached fails the test with the
/// variable's name and what was tried: these tests never skip.
enum TestEnvironment {
    static let amqpURL =
        ProcessInfo.processInfo.environment["DEPOT_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2F"
    static let databaseURL =
        ProcessInfo.processInfo.environment["DEPOT_DATABASE_URL"] ?? "postgres://depot@127.0.0.1:5432/depot"

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private static let nextPort = Mutex(Int.random(in: 20_000...31_000))

    /// A loopback TCP port that nothing listens on, distinct across calls in this process, and
    /// below the kernel's ephemeral range (32768 and up), where outgoing connections take theirs.
    static func freePort() -> Int {
        while true {
            let port = nextPort.withLock { next in
                defer { next = next >= 32_000 ? 20_000 : next + 1 }
                return next
            }
            if isFree(port) { return port }
        }
    }

    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    struct Unreachable: Error, CustomStringConvertible {
        var description: String
    }

    static func amqp(heartbeat: Duration = .seconds(10)) async throws -> AMQPConnection {
        var options = AMQPConfiguration.Options()
        options.initialConnectDeadline = .seconds(5)
        options.heartbeat = heartbeat
        options.reconnectBackoff = Backoff(initial: .milliseconds(50), maximum: .seconds(1))
        do {
            return try await AMQPConnection.connect(AMQPConfiguration(url: amqpURL, options: options))
        } catch {
            throw Unreachable(
                description:
                    "DEPOT_AMQP_URL=\(amqpURL) is unreachable (\(String(reflecting: error))); start it with scripts/dev services"
            )
        }
    }

    static func postgres(maxConnections: Int = 4, acquireTimeout: Duration = .seconds(5), url: String = databaseURL)
        async throws -> PostgresPool
    {
        var options = PostgresConfiguration.Options()
        options.maxConnections = maxConnections
        options.acquireTimeout = acquireTimeout
        let pool = try PostgresPool(configuration: PostgresConfiguration(url: url, options: options))
        do {
            _ = try await pool.withConnection { try await $0.execute("SELECT 1") }
        } catch {
            throw Unreachable(
                description:
                    "DEPOT_DATABASE_URL=\(url) is unreachable (\(String(reflecting: error))); start it with scripts/dev services"
            )
        }
        return pool
    }

    static func uniqueName(_ prefix: String) -> String {
        "test.\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Runs `scripts/dev ARGS…` (for restarts and rabbitmqctl) and returns its standard output.
    @discardableResult
    static func dev(_ arguments: String...) throws -> String { try dev(arguments) }

    @discardableResult
    static func dev(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = repositoryRoot.appendingPathComponent("scripts/dev")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        // A file, not a pipe: a server the script restarts may inherit the descriptor and keep a pipe open forever.
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent(
            "depot-dev-\(UUID().uuidString).out")
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputURL) }
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let data = (try? Data(contentsOf: outputURL)) ?? Data()
        guard process.terminationStatus == 0 else {
            throw Unreachable(
                description: "scripts/dev \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
