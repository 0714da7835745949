import Foundation
import HTTPTypes
import Hummingbird

/// Every route the edge serves, as `METHOD /path/{param}` (OpenAPI's spelling): the router is
/// built from it, the OpenAPI document must list exactly these, and 405 answers name them.
struct RouteTable: Sendable {
    struct Route: Sendable, Hashable {
        var method: HTTPRequest.Method
        var path: String  // OpenAPI style: /v1/products/{sku}
        var hummingbirdPath: String { path.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "") }
    }

    static let all: [Route] = [
        Route(method: .post, path: "/v1/products"),
        Route(method: .get, path: "/v1/products"),
        Route(method: .get, path: "/v1/products/{sku}"),
        Route(method: .patch, path: "/v1/products/{sku}"),
        Route(method: .delete, path: "/v1/products/{sku}"),
        Route(method: .post, path: "/v1/products/{sku}/stock"),
        Route(method: .post, path: "/v1/orders"),
        Route(method: .get, path: "/v1/orders"),
        Route(method: .get, path: "/v1/orders/{id}"),
        Route(method: .post, path: "/v1/orders/{id}/cancel"),
        Route(method: .get, path: "/v1/orders/{id}/events"),
        Route(method: .get, path: "/healthz"),
        Route(method: .get, path: "/readyz"),
        Route(method: .get, path: "/metrics"),
        Route(method: .get, path: "/openapi.json"),
        Route(method: .get, path: "/docs"),
    ]

    /// The methods served at a concrete path (empty when no route has that shape).
    func methods(forPath path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return Self.all.filter { route in
            let pattern = route.path.split(separator: "/")
            return pattern.count == segments.count
                && zip(pattern, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.map(\.method)
    }
}
