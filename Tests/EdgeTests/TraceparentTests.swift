import Testing

@testable import Edge

@Suite("W3C trace context")
struct TraceparentTests {
    @Test("a valid traceparent is kept, anything else replaced")
    func traceparent() {
        #expect(EdgeRoutes.isTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(!EdgeRoutes.isTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"))
        #expect(!EdgeRoutes.isTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"))
        #expect(!EdgeRoutes.isTraceparent("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"))
        #expect(!EdgeRoutes.isTraceparent("garbage"))
    }
}
