import HTTPTypes
import Hummingbird
import Logging

/// One log line per request: method, route, status, duration, the request id, and the
/// `correlation_id` of the order or product it concerns (from the path, or the new resource's
/// `Location`), so a request can be followed into the services' logs.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = EdgeContext

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - started
        var metadata: Logger.Metadata = [
            "method": "\(request.method.rawValue)", "path": "\(request.uri.path.prefix(200))",
            "status": "\(response.status.code)",
            "duration_ms":
                "\(Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000 + Double(elapsed.components.seconds) * 1000)",
        ]
        if let route = context.endpointPath { metadata["route"] = "\(route)" }
        if let correlation = context.parameters.get("id") ?? context.parameters.get("sku")
            ?? response.headers[.location].flatMap({ $0.split(separator: "/").last.map(String.init) })
        {
            metadata["correlation_id"] = "\(correlation.prefix(64))"
        }
        context.logger.info("request", metadata: metadata)
        return response
    }
}
