import Foundation
import HTTPTypes
import Hummingbird

/// Every route the edge serves, by its OpenAPI `operationId`, with its method and path
/// (`/v1/products/{sku}`, OpenAPI's spelling): the router is built from it (a handler per
/// operation id), the OpenAPI document must list exactly these operations, and 405 answers
/// name the methods of a path.
struct RouteTable: Sendable {
    struct Route: Sendable, Hashable {
        var operationId: String
        var method: HTTPRequest.Method
        var path: String
        var hummingbirdPath: String {
            path.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "")
        }
    }

    static let all: [Route] = [
        Route(operationId: "createProduct", method: .post, path: "/v1/products"),
        Route(operationId: "listProducts", method: .get, path: "/v1/products"),
        Route(operationId: "getProduct", method: .get, path: "/v1/products/{sku}"),
        Route(operationId: "updateProduct", method: .patch, path: "/v1/products/{sku}"),
        Route(operationId: "discontinueProduct", method: .delete, path: "/v1/products/{sku}"),
        Route(operationId: "adjustStock", method: .post, path: "/v1/products/{sku}/stock"),
        Route(operationId: "placeOrder", method: .post, path: "/v1/orders"),
        Route(operationId: "listOrders", method: .get, path: "/v1/orders"),
        Route(operationId: "getOrder", method: .get, path: "/v1/orders/{id}"),
        Route(operationId: "cancelOrder", method: .post, path: "/v1/orders/{id}/cancel"),
        Route(operationId: "orderEvents", method: .get, path: "/v1/orders/{id}/events"),
        Route(operationId: "health", method: .get, path: "/healthz"),
        Route(operationId: "ready", method: .get, path: "/readyz"),
        Route(operationId: "metrics", method: .get, path: "/metrics"),
        Route(operationId: "openapi", method: .get, path: "/openapi.json"),
        Route(operationId: "docs", method: .get, path: "/docs"),
        // The admin API (AdminRoutes.swift), for the console and for scripts.
        Route(operationId: "adminOverview", method: .get, path: "/v1/admin/overview"),
        Route(operationId: "adminFlow", method: .get, path: "/v1/admin/flow"),
        Route(operationId: "listDeadLetterQueues", method: .get, path: "/v1/admin/dead-letters"),
        Route(operationId: "showDeadLetters", method: .get, path: "/v1/admin/dead-letters/{queue}"),
        Route(operationId: "redriveDeadLetters", method: .post, path: "/v1/admin/dead-letters/{queue}/redrive"),
        Route(operationId: "purgeDeadLetters", method: .post, path: "/v1/admin/dead-letters/{queue}/purge"),
        Route(operationId: "startReplayDryRun", method: .post, path: "/v1/admin/replay/dry-run"),
        Route(operationId: "listAdminJobs", method: .get, path: "/v1/admin/jobs"),
        Route(operationId: "getAdminJob", method: .get, path: "/v1/admin/jobs/{id}"),
        Route(operationId: "checkOrderRebuild", method: .get, path: "/v1/admin/orders/{id}/rebuild-check"),
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
