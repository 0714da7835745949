import DepotModel
import Foundation
import HTTPTypes
import Hummingbird

/// A request body's JSON read without loss: booleans, integers and other numbers stay apart, so
/// a field can be checked for exactly the type it needs. Parsed by DepotModel's `JSONValue`
/// (a hand-written parser, depth-limited; Foundation's `JSONDecoder` probing each value's type
/// cost a tenth of the edge's CPU per order) and read as `JSONDecoder` did: a number with an
/// integral value (`1.0`, `1e2`) is an integer, as JSON Schema says.
enum JSONInput: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONInput])
    case object([String: JSONInput])

    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let value): self = .bool(value)
        case .integer(let value): self = .int(Int64(value))
        case .double(let value): self = Int64(exactly: value).map { .int($0) } ?? .double(value)
        case .string(let value): self = .string(value)
        case .array(let values): self = .array(values.map(JSONInput.init))
        case .object(let members):
            // A repeated key: the last one counts, as with JSONDecoder.
            self = .object(Dictionary(members.map { ($0.key, JSONInput($0.value)) }, uniquingKeysWith: { $1 }))
        }
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
            var bytes = Array(buffer.readableBytesView)
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }  // a UTF-8 BOM, as JSONDecoder allowed
            value = JSONInput(try JSONValue.parse(bytes))
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
