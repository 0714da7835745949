import Foundation
import JWTKit
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Real HTTP against a `depot all` started by `IsolatedDepot`.
struct EdgeClient {
    static let secret = "edge-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"
    let base: URL
    let depot: IsolatedDepot

    /// Starts `depot all` with the edge on a free port and waits until it answers.
    static func start(_ settings: [String: String] = [:]) async throws -> EdgeClient {
        let port = TestEnvironment.freePort()
        var all = ["DEPOT_JWT_SECRET": secret, "DEPOT_HTTP_PORT": "\(port)", "DEPOT_RATE_LIMIT": "0"]
        for (key, value) in settings { all[key] = value }
        let depot = try await IsolatedDepot.make(all)
        try depot.start("all")
        let client = EdgeClient(base: URL(string: "http://127.0.0.1:\(port)")!, depot: depot)
        let up = try await eventually(timeout: .seconds(30)) {
            (try? await client.send("GET", "/readyz").status) == 200
        }
        guard up else {
            throw TestEnvironment.Unreachable(
                description: "the edge did not come up; logs in \(depot.logDirectory.path)")
        }
        return client
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
        /// The field names of a problem's `errors`.
        var fields: [String] { (json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String } }
    }

    func send(
        _ method: String, _ path: String, token: String? = nil, json: String? = nil, body: Data? = nil,
        headers: [String: String] = [:]
    ) async throws -> Reply {
        var fields = headers
        if let token { fields["Authorization"] = "Bearer \(token)" }
        var payload = body
        if let json {
            payload = Data(json.utf8)
            fields["Content-Type"] = fields["Content-Type"] ?? "application/json"
        }
        let reply = try await Curl.request(method, base.absoluteString + path, headers: fields, body: payload)
        return Reply(status: reply.status, headers: reply.headers, body: reply.body)
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim?
        var role: String?
        var exp: ExpirationClaim
        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    /// A token with any claims, signed with HS256 (or `alg`) and the edge's secret (or `secret`).
    static func token(
        sub: String? = "customer-a", role: String? = "customer", expiresIn: TimeInterval = 3600, alg: String = "HS256",
        secret: String = secret
    ) async throws -> String {
        let claims = Claims(
            sub: sub.map(SubjectClaim.init(value:)), role: role,
            exp: ExpirationClaim(
                value: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + expiresIn).rounded(.down))))
        if alg == "none" {
            let header = base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
            return "\(header).\(base64URL(try JSONEncoder().encode(claims)))."
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Array(secret.utf8)), digestAlgorithm: alg == "HS512" ? .sha512 : .sha256)
        return try await keys.sign(claims)
    }

    static func admin() async throws -> String { try await token(sub: "admin-1", role: "admin") }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
