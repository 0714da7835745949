import Foundation
import Projector

/// Keyset cursors: `next` of a page, passed back as `after`. Opaque to clients, but with an
/// exact shape the OpenAPI document states as a pattern, and every string of that shape is
/// accepted as a position (a cursor the edge did not issue only starts the page elsewhere), so
/// the document says exactly what the edge takes: anything else is 400, an empty one is the
/// first page.
enum Cursor {
    /// `after` of `GET /v1/products`: base64url (no padding) of the last sku's UTF-8.
    static let productPattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"
    static let productMaxLength = 512
    /// `after` of `GET /v1/orders`: base64url of the last order's `created_at` in microseconds
    /// (8 bytes, big-endian) and its id (16 bytes): 32 characters.
    static let orderPattern = "^(?:[A-Za-z0-9_-]{32})?$"

    static func product(after sku: String) -> String { encode(Array(sku.utf8)) }

    static func order(after order: OrderRow) -> String {
        let micros = Int64((order.createdAt.timeIntervalSince1970 * 1_000_000).rounded())
        var bytes = withUnsafeBytes(of: micros.bigEndian, Array.init)
        withUnsafeBytes(of: order.id.uuid) { bytes += $0 }
        return encode(bytes)
    }

    /// The sku to list after ("" for the first page).
    static func productKey(_ after: Substring?) throws -> String {
        guard let after, !after.isEmpty else { return "" }
        guard after.utf8.count <= productMaxLength, let bytes = decode(after) else { throw invalid }
        // Any bytes are a position in sku order; a sku has no NUL, which a text parameter cannot hold.
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The order to list after (nil for the first page).
    static func orderKey(_ after: Substring?) throws -> OrderCursor? {
        guard let after, !after.isEmpty else { return nil }
        guard after.utf8.count == 32, let bytes = decode(after), bytes.count == 24 else { throw invalid }
        let micros = bytes[0..<8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let id = bytes[8..<24].withUnsafeBytes { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
        // Years 1970 to 9999, as PostgreSQL and Date both hold them exactly enough.
        let clamped = min(max(micros, 0), 253_402_300_799_999_999)
        return OrderCursor(createdAt: Date(timeIntervalSince1970: Double(clamped) / 1_000_000), id: id)
    }

    static var invalid: Problem { Problem.invalid("after", "is not a cursor this API returned") }

    // MARK: - base64url

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * $1.offset) }
            for position in 0...chunk.count { out.append(alphabet[Int(value >> (18 - 6 * position) & 63)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Base64url without padding; nil for a character outside the alphabet or a length of 4n+1
    /// (which no byte string encodes to). Bits past the last whole byte are ignored.
    static func decode(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return text.utf8.count % 4 == 1 ? nil : bytes
    }
}
