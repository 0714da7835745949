import HTTPTypes
import Hummingbird

/// `/console`: the operator console, one page and its script and style sheet, embedded in the
/// binary at build time (`resources: .embedInCode` in Package.swift; no CDN, works offline).
///
/// The page holds no data: everything it shows comes from the admin API with the bearer token
/// the operator pastes, which the script keeps in memory only (never a cookie, the URL or
/// storage). Its `Content-Security-Policy` allows nothing but this origin's own files: no
/// inline script or style, no frames, no other hosts.
enum ConsolePage {
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    struct Asset: Sendable {
        var path: String
        var contentType: String
        var bytes: [UInt8]
    }

    static let assets: [Asset] = [
        Asset(path: "/console", contentType: "text/html; charset=utf-8", bytes: PackageResources.console_html),
        Asset(
            path: "/console/console.js", contentType: "text/javascript; charset=utf-8",
            bytes: PackageResources.console_js),
        Asset(
            path: "/console/console.css", contentType: "text/css; charset=utf-8", bytes: PackageResources.console_css),
        Asset(path: "/console/favicon.svg", contentType: "image/svg+xml", bytes: PackageResources.favicon_svg),
    ]

    /// The headers every console answer carries.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!: contentSecurityPolicy,
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("Cross-Origin-Opener-Policy")!: "same-origin",
        .cacheControl: "no-cache",
    ]

    static func response(_ asset: Asset) -> Response {
        var headers = securityHeaders
        headers[.contentType] = asset.contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }

    static func addRoutes(to router: Router<EdgeContext>) {
        for asset in assets {
            router.get(RouterPath(asset.path)) { _, _ in response(asset) }
        }
    }
}
