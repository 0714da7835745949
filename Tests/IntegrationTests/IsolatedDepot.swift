import AMQP
import DepotModel
import Foundation
import Messaging
import Postgres
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A Depot of its own for one test: a fresh RabbitMQ vhost and a fresh database on the shared
/// servers, and real `depot` processes started against them, so tests run side by side and
/// can kill, restart and replicate components without disturbing each other.
final class IsolatedDepot: @unchecked Sendable {
    let name: String
    let amqpURL: String
    let databaseURL: String
    let environment: [String: String]
    /// The server the database was created on (the shared one, or a test's scratch server).
    let databaseServer: String
    private let lock = NSLock()
    private var processes: [(label: String, process: Process)] = []
    let logDirectory: URL

    static let managementURL =
        ProcessInfo.processInfo.environment["DEPOT_MANAGEMENT_URL"] ?? "http://guest:guest@127.0.0.1:15672"

    /// The `depot` executable built by `swift build` (scripts/dev test builds it first).
    static var depotBinary: URL {
        if let path = ProcessInfo.processInfo.environment["DEPOT_BINARY"] { return URL(fileURLWithPath: path) }
        return TestEnvironment.repositoryRoot.appendingPathComponent(".build/debug/depot")
    }

    private init(
        name: String, amqpURL: String, databaseURL: String, environment: [String: String], databaseServer: String
    ) {
        self.name = name
        self.databaseServer = databaseServer
        self.amqpURL = amqpURL
        self.databaseURL = databaseURL
        self.environment = environment
        self.logDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("depot-test-logs/\(name)")
        try? FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
    }

    /// Creates the vhost and the database; `settings` are extra `DEPOT_*` variables for every process.
    static func make(_ settings: [String: String] = [:], databaseServer: String = TestEnvironment.databaseURL)
        async throws -> IsolatedDepot
    {
        let name = "t\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try await management("PUT", "/api/vhosts/\(name)")
        try await management(
            "PUT", "/api/permissions/\(name)/guest", body: #"{"configure":".*","write":".*","read":".*"}"#)
        let admin = try await TestEnvironment.postgres(maxConnections: 1, url: databaseServer)
        try await admin.withConnection { try await $0.execute("CREATE DATABASE \(unescaped: name)") }
        await admin.shutdown()

        var amqp = URLComponents(string: TestEnvironment.amqpURL)!
        amqp.percentEncodedPath = "/\(name)"
        var database = URLComponents(string: databaseServer)!
        database.path = "/\(name)"
        var environment = ProcessInfo.processInfo.environment
        environment["DEPOT_AMQP_URL"] = amqp.string!
        environment["DEPOT_DATABASE_URL"] = database.string!
        environment["DEPOT_LOG_FORMAT"] = "text"
        environment["DEPOT_LOG_LEVEL"] = environment["DEPOT_TEST_LOG_LEVEL"] ?? "info"
        // `depot all` serves the edge too: a port of its own, so tests run side by side.
        environment["DEPOT_HTTP_PORT"] = "\(TestEnvironment.freePort())"
        for (key, value) in settings { environment[key] = value }
        return IsolatedDepot(
            name: name, amqpURL: amqp.string!, databaseURL: database.string!, environment: environment,
            databaseServer: databaseServer)
    }

    /// A Depot that runs already (the cluster of `scripts/dev cluster up`): clients and checks
    /// only; its processes and data are not this object's to tear down.
    static func attach(name: String, environment: [String: String]) -> IsolatedDepot {
        IsolatedDepot(
            name: name, amqpURL: environment["DEPOT_AMQP_URL"]!, databaseURL: environment["DEPOT_DATABASE_URL"]!,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            databaseServer: environment["DEPOT_DATABASE_URL"]!)
    }

    // MARK: - Processes

    /// Starts `depot ARGUMENTS…` with this environment; output goes to a log file.
    @discardableResult
    func start(_ arguments: String..., label: String? = nil) throws -> Process {
        try start(arguments, label: label)
    }

    @discardableResult
    func start(_ arguments: [String], label: String? = nil, settings: [String: String] = [:]) throws -> Process {
        let label = label ?? arguments.joined(separator: "-")
        let process = Process()
        process.executableURL = Self.depotBinary
        process.arguments = arguments
        process.environment = environment.merging(settings) { $1 }
        let log = logDirectory.appendingPathComponent("\(label).log")
        if !FileManager.default.fileExists(atPath: log.path) {
            FileManager.default.createFile(atPath: log.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { processes.append((label, process)) }
        return process
    }

    /// Runs `depot ARGUMENTS…` to its end and returns its exit status and output (stdout, then stderr).
    func run(_ arguments: String...) async throws -> (status: Int32, output: String) {
        let label = "run-\(UUID().uuidString.prefix(8))"
        let process = try start(arguments, label: label)
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let output =
            (try? String(contentsOf: logDirectory.appendingPathComponent("\(label).log"), encoding: .utf8)) ?? ""
        return (process.terminationStatus, output)
    }

    /// Waits until every named queue has at least one consumer (the components are up).
    func waitUntilConsuming(_ queues: [String], timeout: Duration = .seconds(30)) async throws {
        let amqp = try await connect()
        defer { Task { await amqp.close() } }
        let ready = try await eventually(timeout: timeout) {
            for queue in queues {
                guard let info = try? await amqp.inspectQueue(queue), info.consumerCount > 0 else { return false }
            }
            return true
        }
        guard ready else {
            throw TestEnvironment.Unreachable(
                description: "components did not start consuming \(queues); logs in \(logDirectory.path)")
        }
    }

    /// Sends `signal` and waits (without blocking a thread of the cooperative pool) for the exit.
    func kill(_ process: Process, signal: Int32 = SIGKILL) async {
        Foundation.kill(process.processIdentifier, signal)
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// Stops every process (SIGTERM, then SIGKILL), then removes the vhost and the database.
    func tearDown() async {
        // DEPOT_TEST_KEEP=1 leaves everything running for a post-mortem.
        if ProcessInfo.processInfo.environment["DEPOT_TEST_KEEP"] == "1" { return }
        let all = lock.withLock { processes }
        for (_, process) in all where process.isRunning { Foundation.kill(process.processIdentifier, SIGTERM) }
        for (_, process) in all {
            let deadline = ContinuousClock.now + .seconds(20)
            while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        }
        _ = try? await Self.management("DELETE", "/api/vhosts/\(name)")
        if let admin = try? await TestEnvironment.postgres(maxConnections: 1, url: databaseServer) {
            _ = try? await admin.withConnection {
                try await $0.execute("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)")
            }
            await admin.shutdown()
        }
    }

    // MARK: - Clients

    func connect() async throws -> AMQPConnection {
        var options = AMQPConfiguration.Options()
        options.initialConnectDeadline = .seconds(5)
        options.reconnectBackoff = Backoff(initial: .milliseconds(50), maximum: .seconds(1))
        return try await AMQPConnection.connect(AMQPConfiguration(url: amqpURL, options: options))
    }

    func pool(maxConnections: Int = 4) throws -> PostgresPool {
        var options = PostgresConfiguration.Options()
        options.maxConnections = maxConnections
        return PostgresPool(configuration: try PostgresConfiguration(url: databaseURL, options: options))
    }

    /// Calls the RabbitMQ management HTTP API.
    @discardableResult
    static func management(_ method: String, _ path: String, body: String? = nil) async throws -> Data {
        let base = URLComponents(string: managementURL)!
        var url = base
        url.user = nil
        url.password = nil
        let reply = try await Curl.request(
            method, (url.string ?? "") + path, headers: ["Content-Type": "application/json"],
            body: body.map { Data($0.utf8) },
            user: "\(base.user ?? "guest"):\(base.password ?? "guest")")
        guard (200..<300).contains(reply.status) else {
            throw TestEnvironment.Unreachable(
                description:
                    "management API \(method) \(path) answered \(reply.status) (DEPOT_MANAGEMENT_URL=\(managementURL)): \(String(decoding: reply.body, as: UTF8.self))"
            )
        }
        return reply.body
    }
}
