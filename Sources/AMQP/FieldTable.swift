import Foundation

/// An AMQP field table: message headers and declare arguments.
public typealias FieldTable = [String: AMQPValue]

/// A value in a field table, with the AMQP 0-9-1 types RabbitMQ understands.
public enum AMQPValue: Sendable, Hashable {
    case bool(Bool)
    case int8(Int8)
    case uint8(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case float(Float)
    case double(Double)
    case decimal(scale: UInt8, value: UInt32)
    case string(String)
    case bytes([UInt8])
    case array([AMQPValue])
    /// Seconds since the epoch; AMQP timestamps have one-second resolution.
    case timestamp(Date)
    case table(FieldTable)
    case void

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        if case .bytes(let b) = self { return String(validating: b, as: UTF8.self) }
        return nil
    }

    /// Any integer kind as an `Int64`.
    public var integerValue: Int64? {
        switch self {
        case .int8(let v): Int64(v)
        case .uint8(let v): Int64(v)
        case .int16(let v): Int64(v)
        case .uint16(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .uint32(let v): Int64(v)
        case .int64(let v): v
        default: nil
        }
    }
}

extension AMQPValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int64(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
