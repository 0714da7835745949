import CAMQP
import Foundation

// Conversions between Swift values and librabbitmq's C structs. Everything built here points
// into a ScratchArena (valid until its reset) or into the Swift value for the length of a
// closure; everything read from C is copied before the C memory is released.

extension ScratchArena {
    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    func bytes(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        guard buffer.count > 0 else { return amqp_bytes_t(len: 0, bytes: nil) }
        let pointer = allocate(byteCount: buffer.count, alignment: 1)
        pointer.copyMemory(from: buffer.baseAddress!, byteCount: buffer.count)
        return amqp_bytes_t(len: buffer.count, bytes: pointer)
    }

    func table(_ table: FieldTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_empty_table }
        let entries = allocate(byteCount: MemoryLayout<amqp_table_entry_t>.stride * table.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        // Sorted keys make the encoding deterministic.
        for (index, key) in table.keys.sorted().enumerated() {
            (entries + index).initialize(to: amqp_table_entry_t(key: bytes(key), value: fieldValue(table[key]!)))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func fieldValue(_ value: AMQPValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        func kind(_ k: amqp_field_value_kind_t) { field.kind = UInt8(k.rawValue) }
        switch value {
        case .bool(let v):
            kind(AMQP_FIELD_KIND_BOOLEAN)
            field.value.boolean = v ? 1 : 0
        case .int8(let v):
            kind(AMQP_FIELD_KIND_I8)
            field.value.i8 = v
        case .uint8(let v):
            kind(AMQP_FIELD_KIND_U8)
            field.value.u8 = v
        case .int16(let v):
            kind(AMQP_FIELD_KIND_I16)
            field.value.i16 = v
        case .uint16(let v):
            kind(AMQP_FIELD_KIND_U16)
            field.value.u16 = v
        case .int32(let v):
            kind(AMQP_FIELD_KIND_I32)
            field.value.i32 = v
        case .uint32(let v):
            kind(AMQP_FIELD_KIND_U32)
            field.value.u32 = v
        case .int64(let v):
            kind(AMQP_FIELD_KIND_I64)
            field.value.i64 = v
        case .float(let v):
            kind(AMQP_FIELD_KIND_F32)
            field.value.f32 = v
        case .double(let v):
            kind(AMQP_FIELD_KIND_F64)
            field.value.f64 = v
        case .decimal(let scale, let v):
            kind(AMQP_FIELD_KIND_DECIMAL)
            field.value.decimal = amqp_decimal_t(decimals: scale, value: v)
        case .string(let s):
            kind(AMQP_FIELD_KIND_UTF8)
            field.value.bytes = bytes(s)
        case .bytes(let b):
            kind(AMQP_FIELD_KIND_BYTES)
            field.value.bytes = b.withUnsafeBytes { bytes($0) }
        case .timestamp(let date):
            kind(AMQP_FIELD_KIND_TIMESTAMP)
            field.value.u64 = UInt64(max(0, date.timeIntervalSince1970.rounded(.down)))
        case .table(let t):
            kind(AMQP_FIELD_KIND_TABLE)
            field.value.table = table(t)
        case .array(let items):
            kind(AMQP_FIELD_KIND_ARRAY)
            let entries = allocate(byteCount: MemoryLayout<amqp_field_value_t>.stride * max(items.count, 1))
                .bindMemory(to: amqp_field_value_t.self, capacity: max(items.count, 1))
            for (index, item) in items.enumerated() { (entries + index).initialize(to: fieldValue(item)) }
            field.value.array = amqp_array_t(num_entries: Int32(items.count), entries: entries)
        case .void: kind(AMQP_FIELD_KIND_VOID)
        }
        return field
    }

    func properties(_ p: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: Int32 = 0
        func set(_ value: String?, _ flag: Int32, _ assign: (amqp_bytes_t) -> Void) {
            if let value {
                assign(bytes(value))
                flags |= flag
            }
        }
        set(p.contentType, AMQP_BASIC_CONTENT_TYPE_FLAG) { c.content_type = $0 }
        set(p.contentEncoding, AMQP_BASIC_CONTENT_ENCODING_FLAG) { c.content_encoding = $0 }
        if !p.headers.isEmpty {
            c.headers = table(p.headers)
            flags |= AMQP_BASIC_HEADERS_FLAG
        }
        if let mode = p.deliveryMode {
            c.delivery_mode = mode.rawValue
            flags |= AMQP_BASIC_DELIVERY_MODE_FLAG
        }
        if let priority = p.priority {
            c.priority = priority
            flags |= AMQP_BASIC_PRIORITY_FLAG
        }
        set(p.correlationId, AMQP_BASIC_CORRELATION_ID_FLAG) { c.correlation_id = $0 }
        set(p.replyTo, AMQP_BASIC_REPLY_TO_FLAG) { c.reply_to = $0 }
        set(p.expiration, AMQP_BASIC_EXPIRATION_FLAG) { c.expiration = $0 }
        set(p.messageId, AMQP_BASIC_MESSAGE_ID_FLAG) { c.message_id = $0 }
        if let timestamp = p.timestamp {
            c.timestamp = UInt64(max(0, timestamp.timeIntervalSince1970.rounded(.down)))
            flags |= AMQP_BASIC_TIMESTAMP_FLAG
        }
        set(p.type, AMQP_BASIC_TYPE_FLAG) { c.type = $0 }
        set(p.userId, AMQP_BASIC_USER_ID_FLAG) { c.user_id = $0 }
        set(p.appId, AMQP_BASIC_APP_ID_FLAG) { c.app_id = $0 }
        c._flags = amqp_flags_t(flags)
        return c
    }
}

extension String {
    /// Copies librabbitmq bytes (not NUL-terminated) into a String.
    init(amqpBytes b: amqp_bytes_t) {
        guard b.len > 0, let pointer = b.bytes else {
            self = ""
            return
        }
        self = String(decoding: UnsafeRawBufferPointer(start: pointer, count: b.len), as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    init(amqpBytes b: amqp_bytes_t) {
        guard b.len > 0, let pointer = b.bytes else {
            self = []
            return
        }
        self = Array(UnsafeRawBufferPointer(start: pointer, count: b.len))
    }
}

func decodeTable(_ table: amqp_table_t) -> FieldTable {
    var result: FieldTable = [:]
    guard table.num_entries > 0, let entries = table.entries else { return result }
    result.reserveCapacity(Int(table.num_entries))
    for index in 0..<Int(table.num_entries) {
        let entry = entries[index]
        result[String(amqpBytes: entry.key)] = decodeFieldValue(entry.value)
    }
    return result
}

func decodeFieldValue(_ field: amqp_field_value_t) -> AMQPValue {
    switch UInt32(field.kind) {
    case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(field.value.boolean != 0)
    case AMQP_FIELD_KIND_I8.rawValue: return .int8(field.value.i8)
    case AMQP_FIELD_KIND_U8.rawValue: return .uint8(field.value.u8)
    case AMQP_FIELD_KIND_I16.rawValue: return .int16(field.value.i16)
    case AMQP_FIELD_KIND_U16.rawValue: return .uint16(field.value.u16)
    case AMQP_FIELD_KIND_I32.rawValue: return .int32(field.value.i32)
    case AMQP_FIELD_KIND_U32.rawValue: return .uint32(field.value.u32)
    case AMQP_FIELD_KIND_I64.rawValue: return .int64(field.value.i64)
    case AMQP_FIELD_KIND_U64.rawValue: return .int64(Int64(bitPattern: field.value.u64))
    case AMQP_FIELD_KIND_F32.rawValue: return .float(field.value.f32)
    case AMQP_FIELD_KIND_F64.rawValue: return .double(field.value.f64)
    case AMQP_FIELD_KIND_DECIMAL.rawValue:
        return .decimal(scale: field.value.decimal.decimals, value: field.value.decimal.value)
    case AMQP_FIELD_KIND_UTF8.rawValue: return .string(String(amqpBytes: field.value.bytes))
    case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes([UInt8](amqpBytes: field.value.bytes))
    case AMQP_FIELD_KIND_TIMESTAMP.rawValue:
        return .timestamp(Date(timeIntervalSince1970: TimeInterval(field.value.u64)))
    case AMQP_FIELD_KIND_TABLE.rawValue: return .table(decodeTable(field.value.table))
    case AMQP_FIELD_KIND_ARRAY.rawValue:
        let array = field.value.array
        guard array.num_entries > 0, let entries = array.entries else { return .array([]) }
        return .array((0..<Int(array.num_entries)).map { decodeFieldValue(entries[$0]) })
    default: return .void
    }
}

func decodeProperties(_ c: amqp_basic_properties_t) -> AMQPProperties {
    let flags = Int32(bitPattern: c._flags)
    func string(_ flag: Int32, _ value: amqp_bytes_t) -> String? {
        flags & flag != 0 ? String(amqpBytes: value) : nil
    }
    var p = AMQPProperties()
    p.contentType = string(AMQP_BASIC_CONTENT_TYPE_FLAG, c.content_type)
    p.contentEncoding = string(AMQP_BASIC_CONTENT_ENCODING_FLAG, c.content_encoding)
    if flags & AMQP_BASIC_HEADERS_FLAG != 0 { p.headers = decodeTable(c.headers) }
    if flags & AMQP_BASIC_DELIVERY_MODE_FLAG != 0 { p.deliveryMode = .init(rawValue: c.delivery_mode) }
    if flags & AMQP_BASIC_PRIORITY_FLAG != 0 { p.priority = c.priority }
    p.correlationId = string(AMQP_BASIC_CORRELATION_ID_FLAG, c.correlation_id)
    p.replyTo = string(AMQP_BASIC_REPLY_TO_FLAG, c.reply_to)
    p.expiration = string(AMQP_BASIC_EXPIRATION_FLAG, c.expiration)
    p.messageId = string(AMQP_BASIC_MESSAGE_ID_FLAG, c.message_id)
    if flags & AMQP_BASIC_TIMESTAMP_FLAG != 0 { p.timestamp = Date(timeIntervalSince1970: TimeInterval(c.timestamp)) }
    p.type = string(AMQP_BASIC_TYPE_FLAG, c.type)
    p.userId = string(AMQP_BASIC_USER_ID_FLAG, c.user_id)
    p.appId = string(AMQP_BASIC_APP_ID_FLAG, c.app_id)
    return p
}

// MARK: - The error funnel: the only place that turns librabbitmq results into AMQPError.

/// Whether an error means the whole connection is gone (as opposed to one channel).
extension AMQPError {
    var isConnectionLevel: Bool { code == .connectionClosed || code == .connectionFailed }
}

func check(status: Int32, context: @autoclosure () -> String) throws(AMQPError) {
    guard status < 0 else { return }
    throw libraryError(status: status, context: context())
}

func libraryError(status: Int32, context: String) -> AMQPError {
    let text = String(cString: amqp_error_string2(status))
    switch status {
    case AMQP_STATUS_SOCKET_ERROR.rawValue, AMQP_STATUS_CONNECTION_CLOSED.rawValue,
        AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue, AMQP_STATUS_SSL_ERROR.rawValue,
        AMQP_STATUS_SOCKET_CLOSED.rawValue, AMQP_STATUS_UNEXPECTED_STATE.rawValue,
        AMQP_STATUS_BAD_AMQP_DATA.rawValue, AMQP_STATUS_UNKNOWN_CLASS.rawValue,
        AMQP_STATUS_UNKNOWN_METHOD.rawValue, AMQP_STATUS_TIMER_FAILURE.rawValue:
        return AMQPError(.connectionClosed, replyText: text, libraryStatus: status, context: context)
    case AMQP_STATUS_TIMEOUT.rawValue:
        // A blocking RPC that timed out leaves the connection's framing unknown: treat it as lost.
        return AMQPError(.connectionClosed, replyText: text, libraryStatus: status, context: context)
    default:
        return AMQPError(.library, replyText: text, libraryStatus: status, context: context)
    }
}

/// Classifies an RPC reply the way rabbitmq-c's `die_on_amqp_error` does.
func check(reply: amqp_rpc_reply_t, context: @autoclosure () -> String) throws(AMQPError) {
    switch reply.reply_type {
    case AMQP_RESPONSE_NORMAL:
        return
    case AMQP_RESPONSE_NONE:
        throw AMQPError(.library, replyText: "missing RPC reply type", context: context())
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        throw libraryError(status: reply.library_error, context: context())
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        throw serverError(method: reply.reply, context: context())
    default:
        throw AMQPError(.library, replyText: "unknown reply type", context: context())
    }
}

func serverError(method: amqp_method_t, context: String) -> AMQPError {
    switch method.id {
    case AMQP_CONNECTION_CLOSE_METHOD:
        let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
        return AMQPError(
            .connectionClosed, replyCode: close.reply_code, replyText: String(amqpBytes: close.reply_text),
            classId: close.class_id, methodId: close.method_id, context: context)
    case AMQP_CHANNEL_CLOSE_METHOD:
        let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
        return AMQPError(
            .channelClosed, replyCode: close.reply_code, replyText: String(amqpBytes: close.reply_text),
            classId: close.class_id, methodId: close.method_id, context: context)
    default:
        return AMQPError(.library, replyText: "unexpected server method \(method.id)", context: context)
    }
}
