import AMQP
import Testing

@Suite("AMQP URLs")
struct AMQPEndpointTests {
    @Test("the contract's default URL names vhost / on loopback")
    func defaultURL() throws {
        let endpoint = try AMQPEndpoint(url: "amqp://guest:guest@127.0.0.1:5672/%2F")
        #expect(endpoint == AMQPEndpoint(host: "127.0.0.1", port: 5672, user: "guest", password: "guest", vhost: "/"))
    }

    @Test("user, password and vhost are percent-decoded; port and vhost have defaults")
    func decoding() throws {
        let endpoint = try AMQPEndpoint(url: "amqp://us%40er:p%3Ass%2Fw@broker.example/my%2Fvhost")
        #expect(endpoint.user == "us@er")
        #expect(endpoint.password == "p:ss/w")
        #expect(endpoint.vhost == "my/vhost")
        #expect(endpoint.port == 5672)
        #expect(try AMQPEndpoint(url: "amqp://h").vhost == "/")
        #expect(try AMQPEndpoint(url: "amqp://h:1234").port == 1234)
        #expect(try AMQPEndpoint(url: "amqp://[::1]:5673/v").host == "::1")
    }

    @Test("a comma-separated list names several nodes, in order")
    func list() throws {
        let endpoints = try AMQPEndpoint.list("amqp://a:1/%2F, amqp://b:2/%2F,amqp://c")
        #expect(endpoints.map(\.host) == ["a", "b", "c"])
        #expect(endpoints.map(\.port) == [1, 2, 5672])
    }

    @Test(
        "bad URLs are refused with a reason",
        arguments: [
            "http://h", "amqp://", "amqp://h:notaport", "amqp://h:70000", "amqp://h/%zz", "amqps://h", "", " , ",
        ])
    func invalid(url: String) {
        #expect(throws: AMQPError.self) { try AMQPEndpoint.list(url) }
    }

    @Test("the description hides the password")
    func description() throws {
        let endpoint = try AMQPEndpoint(url: "amqp://u:secret@h:1/%2F")
        #expect(!endpoint.description.contains("secret"))
        #expect(endpoint.description == "amqp://u@h:1/%2F")
    }
}
