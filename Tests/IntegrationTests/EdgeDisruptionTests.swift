import Foundation
import Testing

/// The edge while the broker is away: 503 with Retry-After and nothing half-done, then 202 again
/// without a restart. Run alone (`--filter Disruption`): it stops the shared broker.
@Suite("Edge disruption", .serialized)
struct EdgeDisruptionTests {
    @Test func brokerStoppedGives503ThenTheEdgeRecoversByItself() async throws {
        let edge = try await EdgeClient.start()
        let admin = try await EdgeClient.admin()
        let created = try await edge.send(
            "POST", "/v1/products", token: admin, json: #"{"sku":"d-1","name":"D","price_cents":5,"stock":5}"#,
            headers: ["Prefer": "wait=5"])
        #expect(created.status == 201)

        try TestEnvironment.dev("rabbitmqctl", "stop_app")
        do {
            let down = try await eventually(timeout: .seconds(15)) {
                try await edge.send("POST", "/v1/products/d-1/stock", token: admin, json: #"{"delta":1}"#).status == 503
            }
            #expect(down)
            let refused = try await edge.send(
                "POST", "/v1/orders", token: try await EdgeClient.token(),
                json: #"{"lines":[{"sku":"d-1","quantity":1}],"payment":{"token":"tok_ok"}}"#,
                headers: ["Idempotency-Key": "during-outage"])
            #expect(refused.status == 503)
            #expect(Int(refused.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(refused.header("Content-Type") == "application/problem+json")
            #expect(try await edge.send("GET", "/readyz").status == 503)
            // Reads do not need the broker.
            #expect(try await edge.send("GET", "/v1/products/d-1").status == 200)
        } catch {
            try? TestEnvironment.dev("rabbitmqctl", "start_app")
            throw error
        }
        try TestEnvironment.dev("rabbitmqctl", "start_app")

        // The same request again, with the same key: accepted now, and the order goes through once.
        let customer = try await EdgeClient.token()
        var accepted: EdgeClient.Reply?
        let back = try await eventually(timeout: .seconds(60)) {
            accepted = try await edge.send(
                "POST", "/v1/orders", token: customer,
                json: #"{"lines":[{"sku":"d-1","quantity":1}],"payment":{"token":"tok_ok"}}"#,
                headers: ["Idempotency-Key": "during-outage", "Prefer": "wait=5"])
            return accepted?.status == 201
        }
        #expect(back, "last answer: \(accepted?.status ?? 0) \(accepted?.text.prefix(300) ?? "")")
        #expect(accepted?.json["status"] as? String == "confirmed")
        #expect(try await edge.send("GET", "/readyz").status == 200)
        let orders = try await edge.send("GET", "/v1/orders", token: customer)
        #expect((orders.json["items"] as? [Any])?.count == 1)
        await edge.depot.tearDown()
    }
}
