import CivilDate
import Foundation

/// One parameter as libpq takes it: bytes in text or binary format, with a type OID
/// (0 lets the server infer the type from the statement).
public struct PostgresBind: Sendable, Hashable {
    public var bytes: [UInt8]
    public var isBinary: Bool
    public var typeOID: UInt32

    public init(text: String, typeOID: UInt32 = 0) {
        self.bytes = Array(text.utf8)
        self.isBinary = false
        self.typeOID = typeOID
    }

    public init(binary: [UInt8], typeOID: UInt32) {
        self.bytes = binary
        self.isBinary = true
        self.typeOID = typeOID
    }
}

/// A Swift value that can be a query parameter.
public protocol PostgresEncodable: Sendable {
    var postgresBind: PostgresBind { get }
}

/// A Swift value that can be read from a column (libpq's text format).
public protocol PostgresDecodable {
    init(postgresText text: String) throws
}

enum PostgresOID {
    static let bool: UInt32 = 16
    static let bytea: UInt32 = 17
    static let int8: UInt32 = 20
    static let int2: UInt32 = 21
    static let int4: UInt32 = 23
    static let text: UInt32 = 25
    static let float8: UInt32 = 701
    static let timestamptz: UInt32 = 1184
    static let uuid: UInt32 = 2950
    static let jsonb: UInt32 = 3802
}

func decodingError(_ text: String, as type: String) -> PostgresError {
    PostgresError(.decoding, message: "cannot read '\(text.prefix(64))' as \(type)")
}

func parseInteger<T: FixedWidthInteger>(_ text: String) throws -> T {
    guard let value = T(text) else { throw decodingError(text, as: "\(T.self)") }
    return value
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: self) }
    public init(postgresText text: String) { self = text }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: String(self), typeOID: PostgresOID.int8) }
    public init(postgresText text: String) throws { self = try parseInteger(text) }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: String(self), typeOID: PostgresOID.int8) }
    public init(postgresText text: String) throws { self = try parseInteger(text) }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: String(self), typeOID: PostgresOID.int4) }
    public init(postgresText text: String) throws { self = try parseInteger(text) }
}

extension Int16: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: String(self), typeOID: PostgresOID.int2) }
    public init(postgresText text: String) throws { self = try parseInteger(text) }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: "\(self)", typeOID: PostgresOID.float8) }
    public init(postgresText text: String) throws {
        guard let value = Double(text) else { throw decodingError(text, as: "Double") }
        self = value
    }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: self ? "t" : "f", typeOID: PostgresOID.bool) }
    public init(postgresText text: String) throws {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw decodingError(text, as: "Bool")
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind { PostgresBind(text: uuidString.lowercased(), typeOID: PostgresOID.uuid) }
    public init(postgresText text: String) throws {
        // By hand: Foundation parses with sscanf, which dominated reading the event log.
        let fast = text.utf8.withContiguousStorageIfAvailable(parseCanonicalUUID) ?? nil
        guard let value = fast ?? UUID(uuidString: text) else { throw decodingError(text, as: "UUID") }
        self = value
    }
}

/// `bytea`, sent in binary format and read from the server's hex text form.
extension Array: PostgresEncodable where Element == UInt8 {
    public var postgresBind: PostgresBind { PostgresBind(binary: self, typeOID: PostgresOID.bytea) }
}

extension Array: PostgresDecodable where Element == UInt8 {
    public init(postgresText text: String) throws {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw decodingError(text, as: "bytea (hex)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = hexNibble(utf8[index]), let low = hexNibble(utf8[index + 1]) else {
                throw decodingError(text, as: "bytea (hex)")
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (PostgreSQL's output), nil for any other shape.
private func parseCanonicalUUID(_ u: UnsafeBufferPointer<UInt8>) -> UUID? {
    guard u.count == 36, u[8] == UInt8(ascii: "-"), u[13] == UInt8(ascii: "-"), u[18] == UInt8(ascii: "-"),
        u[23] == UInt8(ascii: "-")
    else { return nil }
    var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    let ok = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
        var index = 0
        for byte in 0..<16 {
            if index == 8 || index == 13 || index == 18 || index == 23 { index += 1 }
            guard let high = hexNibble(u[index]), let low = hexNibble(u[index + 1]) else { return false }
            out[byte] = high << 4 | low
            index += 2
        }
        return true
    }
    return ok ? UUID(uuid: bytes) : nil
}

private func hexNibble(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// `timestamptz`, exchanged in UTC with microsecond precision.
extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresBind: PostgresBind {
        PostgresBind(text: PostgresTimestamp.format(self), typeOID: PostgresOID.timestamptz)
    }
    public init(postgresText text: String) throws {
        guard let date = PostgresTimestamp.parse(text) else { throw decodingError(text, as: "timestamptz") }
        self = date
    }
}

/// A `jsonb` value: the JSON text as bytes.
public struct PostgresJSON: PostgresEncodable, PostgresDecodable, Hashable {
    public var bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ text: String) { self.bytes = Array(text.utf8) }
    public init<T: Encodable>(encoding value: T, encoder: JSONEncoder = JSONEncoder()) throws {
        self.bytes = Array(try encoder.encode(value))
    }
    public init(postgresText text: String) { self.bytes = Array(text.utf8) }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(bytes))
    }
    public var postgresBind: PostgresBind {
        PostgresBind(text: String(decoding: bytes, as: UTF8.self), typeOID: PostgresOID.jsonb)
    }
}

extension Date {
    /// The text PostgreSQL stores for this time in a `timestamptz` (microseconds, rounded), so a
    /// time written inside JSON lands exactly as one bound as a parameter.
    public var postgresTimestampText: String { PostgresTimestamp.format(self) }
}

enum PostgresTimestamp {
    /// `2026-11-24T08:33:09.123456Z`, which PostgreSQL reads in any DateStyle.
    static func format(_ date: Date) -> String {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 {
            micros += 1_000_000
            seconds -= 1
        }
        let (y, m, d) = CivilDate.date(days: Int(floorDiv(seconds, 86_400)))
        let secondOfDay = Int(seconds - floorDiv(seconds, 86_400) * 86_400)
        guard (0...9999).contains(y) else {
            return String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, m, d, secondOfDay / 3600, secondOfDay / 60 % 60,
                secondOfDay % 60, Int(micros))
        }
        // Digit by digit: String(format:) was a seventh of a projection rebuild.
        return String(unsafeUninitializedCapacity: 27) { out in
            var at = 0
            func put(_ value: Int, _ width: Int) {
                var value = value
                for position in stride(from: at + width - 1, through: at, by: -1) {
                    out[position] = UInt8(48 + value % 10)
                    value /= 10
                }
                at += width
            }
            func put(_ character: Character) {
                out[at] = character.asciiValue!
                at += 1
            }
            put(y, 4)
            put("-")
            put(m, 2)
            put("-")
            put(d, 2)
            put("T")
            put(secondOfDay / 3600, 2)
            put(":")
            put(secondOfDay / 60 % 60, 2)
            put(":")
            put(secondOfDay % 60, 2)
            put(".")
            put(Int(micros), 6)
            put("Z")
            return at
        }
    }

    /// Reads the ISO output of a session in UTC: `2026-11-24 08:33:09.123456+00`.
    static func parse(_ text: String) -> Date? {
        let u = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= u.count else { return nil }
            var value = 0
            for c in u[from..<from + count] {
                guard c >= 48 && c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard u.count >= 19, let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var index = 19
        var micros = 0
        if index < u.count && u[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < u.count, u[index] >= 48 && u[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int(u[index] - 48) }
                digits += 1
                index += 1
            }
            for _ in digits..<6 where digits < 6 { micros *= 10 }
        }
        var offsetSeconds = 0
        if index < u.count && (u[index] == UInt8(ascii: "+") || u[index] == UInt8(ascii: "-")) {
            let sign = u[index] == UInt8(ascii: "+") ? 1 : -1
            guard let hours = number(index + 1, 2) else { return nil }
            var minutes = 0
            if index + 3 < u.count && u[index + 3] == UInt8(ascii: ":") { minutes = number(index + 4, 2) ?? 0 }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        }
        let days = CivilDate.days(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offsetSeconds)
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
}
