import HTTPTypes
import Hummingbird
import Logging
import Prometheus

/// `/healthz`, `/readyz` and `/metrics` for a worker process (`DEPOT_ADMIN_PORT`); under
/// `depot all` the edge serves them. `metrics` is the process's registry, served on `/metrics`.
public enum AdminServer {
    public static func application(
        host: String, port: Int, metrics: PrometheusCollectorRegistry, logger: Logger,
        ready: @escaping @Sendable () async -> [String: Bool]
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        router.get("/readyz") { _, _ in
            let checks = await ready()
            let isReady = checks.values.allSatisfy { $0 }
            let body =
                "{"
                + checks.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value ? "ok" : "unreachable")\"" }
                .joined(separator: ",")
                + ",\"status\":\"\(isReady ? "ready" : "not ready")\"}"
            return Response(
                status: isReady ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "depot-admin"),
            logger: logger)
    }
}
