import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Postgres

/// An error answer as `application/problem+json` (RFC 9457): `type`, `title`, `status`,
/// `detail`, and `errors` naming each invalid field.
public struct Problem: Error, HTTPResponseError, Sendable {
    public struct FieldError: Codable, Sendable, Hashable {
        public var field: String
        public var message: String
    }

    public var status: HTTPResponse.Status
    public var detail: String
    public var errors: [FieldError]
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ detail: String, errors: [FieldError] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public static func invalid(_ errors: [FieldError]) -> Problem {
        Problem(
            .badRequest, errors.count == 1 ? errors[0].message : "\(errors.count) fields are invalid", errors: errors)
    }

    public static func invalid(_ field: String, _ message: String) -> Problem {
        invalid([FieldError(field: field, message: message)])
    }

    public static func notFound(_ detail: String = "no such resource") -> Problem { Problem(.notFound, detail) }

    public static func unavailable(_ detail: String, retryAfter seconds: Int) -> Problem {
        Problem(.serviceUnavailable, detail, headers: [.retryAfter: "\(seconds)"])
    }

    /// PostgreSQL is away or refuses: nothing of the request was done (a route reads and claims
    /// in the database before it publishes, and an accepted command is answered 202 regardless).
    public static let databaseUnavailable = unavailable(
        "the database is unavailable; nothing was done, retry", retryAfter: 2)

    struct Body: Encodable {
        var type: String
        var title: String
        var status: Int
        var detail: String
        var errors: [FieldError]?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(
            type: "https://depot.example/problems/\(status.code)", title: status.reasonPhrase, status: status.code,
            detail: detail,
            errors: errors.isEmpty ? nil : errors)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        let data = (try? Self.encoder.encode(body)) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// Turns every error into a problem answer: a route's `Problem`, Hummingbird's own `HTTPError`s
/// (404 for an unknown path, 413 for a body over the limit), 405 with `Allow` for a known path
/// with another method, 503 when the database is unavailable, and — never expected — anything else as a logged 500.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let routes: RouteTable

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return try problem.response(from: request, context: context)
        } catch let error as PostgresError where error.isUnavailable {
            context.logger.warning(
                "database unavailable", metadata: ["error": "\(error.kind): \(error.message.prefix(200))"])
            return try Problem.databaseUnavailable.response(from: request, context: context)
        } catch let error as HTTPError {
            if error.status == .notFound {
                let allowed = routes.methods(forPath: request.uri.path)
                if !allowed.isEmpty {
                    let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
                    return try Problem(
                        .methodNotAllowed, "\(request.method.rawValue) is not allowed here; use \(allow)",
                        headers: [.allow: allow]
                    )
                    .response(from: request, context: context)
                }
                return try Problem.notFound("no route for \(request.method.rawValue) \(request.uri.path.prefix(200))")
                    .response(from: request, context: context)
            }
            if error.status == .contentTooLarge {
                return try Problem(.contentTooLarge, "the body is larger than 64 KiB").response(
                    from: request, context: context)
            }
            return try Problem(error.status, error.body ?? error.status.reasonPhrase, headers: error.headers).response(
                from: request, context: context)
        } catch let error as any HTTPResponseError {
            return try Problem(error.status, error.status.reasonPhrase).response(from: request, context: context)
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return try Problem(.internalServerError, "an unexpected error; it has been logged").response(
                from: request, context: context)
        }
    }
}
