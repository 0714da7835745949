import Foundation
import HTTPTypes
import Hummingbird
import JWTKit

/// The claims of a Depot bearer token (docs/interface.md §3): `sub`, `role`, `exp`.
struct DepotClaims: JWTPayload {
    var sub: SubjectClaim
    var role: String
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }
}

/// Verifies HS256 bearer tokens and issues them (`depot token`).
public struct TokenAuthority: Sendable {
    let keys: JWTKeyCollection

    public init(secret: String) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Array(secret.utf8)), digestAlgorithm: .sha256)
        self.keys = keys
    }

    /// A signed token for `subject` with `role`, valid for `ttl`.
    public func issue(subject: String, role: Caller.Role, ttl: Duration) async throws -> String {
        let seconds = Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        let claims = DepotClaims(
            sub: SubjectClaim(value: subject), role: role.rawValue,
            exp: ExpirationClaim(
                value: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + seconds).rounded(.down))))
        return try await keys.sign(claims)
    }

    /// The caller a token names; throws a 401 problem for anything but a valid HS256 token
    /// with `sub`, a known `role` and a future `exp`.
    func verify(_ token: String) async throws -> Caller {
        // Read the header first: only HS256 is accepted, whatever the key collection would try.
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Data(base64URLEncoded: String(parts[0])),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            header["alg"] as? String == "HS256"
        else {
            throw Problem(.unauthorized, "the bearer token is not an HS256 JWT", headers: [.wwwAuthenticate: "Bearer"])
        }
        let claims: DepotClaims
        do {
            claims = try await keys.verify(token, as: DepotClaims.self)
        } catch {
            throw Problem(
                .unauthorized, "the bearer token is invalid or expired", headers: [.wwwAuthenticate: "Bearer"])
        }
        guard !claims.sub.value.isEmpty, let role = Caller.Role(rawValue: claims.role) else {
            throw Problem(
                .unauthorized, "the bearer token needs a sub and a role of customer or admin",
                headers: [.wwwAuthenticate: "Bearer"])
        }
        return Caller(subject: claims.sub.value, role: role)
    }
}

/// Reads `Authorization: Bearer …` into the context; a request without one stays anonymous,
/// and routes decide whether they need a caller.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let authority: TokenAuthority

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response)
        async throws -> Response
    {
        var context = context
        if let header = request.headers[.authorization] {
            guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
                throw Problem(.unauthorized, "use Authorization: Bearer <token>", headers: [.wwwAuthenticate: "Bearer"])
            }
            context.caller = try await authority.verify(
                String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        }
        return try await next(request, context)
    }
}

extension EdgeContext {
    /// The caller, or 401 when there is none.
    func requireCaller() throws -> Caller {
        guard let caller else {
            throw Problem(.unauthorized, "this route needs a bearer token", headers: [.wwwAuthenticate: "Bearer"])
        }
        return caller
    }

    /// An admin caller: 401 without a token, 403 with another role.
    func requireAdmin() throws -> Caller {
        let caller = try requireCaller()
        guard caller.role == .admin else { throw Problem(.forbidden, "this route is for admins") }
        return caller
    }
}

extension Data {
    init?(base64URLEncoded text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }

    func base64URLEncodedString() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
