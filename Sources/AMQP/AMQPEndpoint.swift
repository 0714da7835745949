import Foundation

/// One broker node, parsed from an `amqp://user:pass@host:port/vhost` URL.
///
/// Follows the AMQP URI spec: user, password and vhost are percent-decoded; a missing path
/// means vhost `/`, so `amqp://host/%2F` and `amqp://host` both name the default vhost.
public struct AMQPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var vhost: String

    public init(host: String, port: Int = 5672, user: String = "guest", password: String = "guest", vhost: String = "/")
    {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.vhost = vhost
    }

    public init(url: String) throws {
        func invalid(_ why: String) -> AMQPError {
            AMQPError(.invalidURL, replyText: why, context: "parsing an AMQP URL")
        }
        let trimmed = url.trimmingWhitespace()
        guard let schemeEnd = trimmed.range(of: "://") else { throw invalid("missing amqp:// scheme") }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        if scheme == "amqps" { throw invalid("amqps (TLS) is not supported by this build") }
        guard scheme == "amqp" else { throw invalid("scheme must be amqp, not \(scheme)") }
        var rest = trimmed[schemeEnd.upperBound...]

        var vhost = "/"
        if let slash = rest.firstIndex(of: "/") {
            vhost = try Self.percentDecoded(rest[rest.index(after: slash)...], what: "vhost")
            rest = rest[..<slash]
        }
        var user = "guest"
        var password = "guest"
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = try Self.percentDecoded(credentials[..<colon], what: "user")
                password = try Self.percentDecoded(credentials[credentials.index(after: colon)...], what: "password")
            } else {
                user = try Self.percentDecoded(credentials, what: "user")
            }
        }
        var host = Substring(rest)
        var port = 5672
        if host.hasPrefix("[") {  // IPv6 literal
            guard let close = host.firstIndex(of: "]") else { throw invalid("unclosed [ in host") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw invalid("bad port") }
                port = p
            } else if !after.isEmpty {
                throw invalid("unexpected text after the host")
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            let portText = host[host.index(after: colon)...]
            guard let p = Int(portText), (1...65535).contains(p) else { throw invalid("bad port '\(portText)'") }
            port = p
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        self.init(host: String(host), port: port, user: user, password: password, vhost: vhost)
    }

    /// Parses a comma-separated list of URLs, the form `DEPOT_AMQP_URL` takes for a cluster.
    public static func list(_ urls: String) throws -> [AMQPEndpoint] {
        let parts = urls.split(separator: ",").map { String($0) }.filter { !$0.trimmingWhitespace().isEmpty }
        guard !parts.isEmpty else { throw AMQPError(.invalidURL, replyText: "no URL given") }
        return try parts.map { try AMQPEndpoint(url: $0) }
    }

    /// The URL without the password, for logs.
    public var description: String {
        let encodedVhost = vhost.utf8.map { byte -> String in
            let c = Character(Unicode.Scalar(byte))
            return (c.isLetter || c.isNumber || "-._~".contains(c)) && byte < 128 ? String(c) : "%" + hex(byte)
        }.joined()
        return "amqp://\(user)@\(host):\(port)/\(encodedVhost)"
    }

    static func percentDecoded(_ text: Substring, what: String) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw AMQPError(.invalidURL, replyText: "bad percent-encoding in the \(what)")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw AMQPError(.invalidURL, replyText: "the \(what) is not UTF-8 once decoded")
        }
        return decoded
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(self.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
