import Foundation
import HTTPTypes
import Hummingbird

/// A request body's JSON read without loss: booleans, integers and other numbers stay apart, so
/// a field can be checked for exactly the type it needs. (Not DepotModel's `JSONValue`, the
/// parser of message bodies: this one keeps whatever a client sends, to name what is wrong.)
enum JSONInput: Decodable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONInput])
    case object([String: JSONInput])

    init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var values: [JSONInput] = []
            while !array.isAtEnd { values.append(try array.decode(JSONInput.self)) }
            self = .array(values)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var values: [String: JSONInput] = [:]
            for key in object.allKeys { values[key.stringValue] = try object.decode(JSONInput.self, forKey: key) }
            self = .object(values)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let value = try? single.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? single.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? single.decode(Double.self) {
            self = .double(value)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Checks a JSON object field by field, collecting every problem before answering 400.
struct FieldReader {
    let fields: [String: JSONInput]
    let prefix: String
    var errors: [Problem.FieldError] = []

    /// Parses a request body that must be a JSON object with only `allowed` keys.
    static func body(_ request: Request, context: EdgeContext, allowed: Set<String>) async throws -> FieldReader {
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            throw Problem(.unsupportedMediaType, "send the body as application/json")
        }
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        let value: JSONInput
        do {
            value = try JSONDecoder().decode(JSONInput.self, from: Data(buffer.readableBytesView))
        } catch {
            throw Problem(
                .badRequest, "the body is not valid JSON", errors: [.init(field: "body", message: "malformed JSON")])
        }
        return try FieldReader(value, at: "", allowed: allowed)
    }

    init(_ value: JSONInput, at prefix: String, allowed: Set<String>) throws {
        guard case .object(let fields) = value else {
            throw Problem.invalid(prefix.isEmpty ? "body" : prefix, "must be a JSON object, not \(value.typeName)")
        }
        self.fields = fields
        self.prefix = prefix
        let unknown = fields.keys.filter { !allowed.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw Problem.invalid(unknown.map { .init(field: path($0), message: "unknown field") })
        }
    }

    func path(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }

    mutating func fail(_ key: String, _ message: String) {
        errors.append(.init(field: path(key), message: message))
    }

    mutating func string(
        _ key: String, required: Bool = true, length: ClosedRange<Int>, pattern: ((String) -> Bool)? = nil,
        rule: String = ""
    ) -> String? {
        switch fields[key] {
        case nil:
            if required { fail(key, "is required") }
        case .string(let text)?:
            // Characters as JSON Schema's minLength and maxLength count them: code points.
            guard length.contains(text.unicodeScalars.count) else {
                fail(key, "must be \(length.lowerBound) to \(length.upperBound) characters")
                return nil
            }
            if let pattern, !pattern(text) {
                fail(key, "must match \(rule)")
                return nil
            }
            return text
        case let other?:
            fail(key, "must be a string, not \(other.typeName)")
        }
        return nil
    }

    mutating func integer(_ key: String, required: Bool = true, in range: ClosedRange<Int64>) -> Int? {
        switch fields[key] {
        case nil:
            if required { fail(key, "is required") }
        case .int(let number)?:
            guard range.contains(number) else {
                fail(key, "must be between \(range.lowerBound) and \(range.upperBound)")
                return nil
            }
            return Int(number)
        case .double?:
            fail(key, "must be a whole number within \(range.lowerBound)...\(range.upperBound)")
        case let other?:
            fail(key, "must be an integer, not \(other.typeName)")
        }
        return nil
    }

    func finish() throws {
        if !errors.isEmpty { throw Problem.invalid(errors) }
    }
}
