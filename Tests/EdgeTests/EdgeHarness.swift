import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTKit
import Logging
import Postgres
import Prometheus

@testable import Edge

/// The edge's router in process (`app.test(.router)`), on fakes of the broker and the database:
/// the production middleware and handlers, no server.
struct EdgeHarness {
    static let secret = "router-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"
    let publisher = FakePublisher()
    let projections = FakeProjections()
    let idempotency = FakeIdempotency()
    let operations = FakeAdminOperations()
    let jobs: AdminJobs
    let history = AdminFlowHistory()
    /// A fresh registry per test (the application's is the process's).
    let metrics = PrometheusCollectorRegistry()
    let waiters: ProjectionWaiters
    let authority: TokenAuthority
    let rateLimit: (rate: Double, burst: Double)?
    let confirmTimeout: Duration

    init(rateLimit: (rate: Double, burst: Double)? = nil, confirmTimeout: Duration = .seconds(5)) async throws {
        var logger = Logger(label: "edge-test")
        logger.logLevel = .error
        // Never run as a service here: tests announce the projector's changes with `waiters.changed`.
        waiters = ProjectionWaiters(
            listenConfiguration: try PostgresConfiguration(url: "postgres://nobody@127.0.0.1:1/none"), logger: logger)
        authority = await TokenAuthority(secret: Self.secret)
        self.rateLimit = rateLimit
        self.confirmTimeout = confirmTimeout
        jobs = AdminJobs(logger: logger)
    }

    func test(_ body: @escaping @Sendable (Client) async throws -> Void) async throws {
        var logger = Logger(label: "edge-test")
        logger.logLevel = .error
        let listen = try PostgresConfiguration(url: "postgres://nobody@127.0.0.1:1/none")
        let router = EdgeServer.router(
            configuration: EdgeConfiguration(
                host: "127.0.0.1", port: 0, confirmTimeout: confirmTimeout, rateLimit: rateLimit,
                listenConfiguration: listen),
            publisher: publisher, projections: projections, idempotency: idempotency, authority: authority,
            waiters: waiters, metrics: metrics, admin: AdminRoutes(admin: operations, jobs: jobs, history: history))
        let app = Application(router: router, logger: logger)
        try await app.test(.router) { client in try await body(Client(client: client)) }
    }

    func token(_ subject: String = "alice", role: Caller.Role = .customer) async throws -> String {
        try await authority.issue(subject: subject, role: role, ttl: .seconds(3600))
    }

    func admin() async throws -> String { try await token("admin-1", role: .admin) }

    /// A token with any claims (missing ones left out), signed with HS256 (or `alg`) and `secret`.
    static func forgedToken(
        sub: String? = "alice", role: String? = "customer", expiresIn: TimeInterval = 3600, alg: String = "HS256",
        secret: String = secret
    ) async throws -> String {
        struct Claims: JWTPayload {
            var sub: SubjectClaim?
            var role: String?
            var exp: ExpirationClaim
            func verify(using algorithm: some JWTAlgorithm) throws {}
        }
        let claims = Claims(
            sub: sub.map(SubjectClaim.init(value:)), role: role,
            exp: ExpirationClaim(
                value: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + expiresIn).rounded(.down))))
        if alg == "none" {
            let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncodedString()
            return "\(header).\(try JSONEncoder().encode(claims).base64URLEncodedString())."
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Array(secret.utf8)), digestAlgorithm: alg == "HS512" ? .sha512 : .sha256)
        return try await keys.sign(claims)
    }
}

/// Requests to the router, answers as plain values.
struct Client: Sendable {
    let client: any TestClientProtocol

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPFields
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:] }
        func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
        /// The field names of a problem's `errors`.
        var fields: [String] { (json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String } }
        var isProblem: Bool {
            header("Content-Type") == "application/problem+json" && json["status"] as? Int == status
                && json["type"] as? String == "https://depot.example/problems/\(status)" && json["title"] is String
                && json["detail"] is String
        }
    }

    func send(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil, body: [UInt8]? = nil,
        headers: [String: String] = [:]
    ) async throws -> Reply {
        var fields = HTTPFields()
        if let token { fields[.authorization] = "Bearer \(token)" }
        var bytes = body
        if let json {
            bytes = Array(json.utf8)
            fields[.contentType] = "application/json"
        }
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        let response = try await client.execute(
            uri: uri, method: method, headers: fields, body: bytes.map { ByteBuffer(bytes: $0) })
        return Reply(
            status: Int(response.status.code), headers: response.headers, body: Array(response.body.readableBytesView))
    }
}
