import Foundation

/// RFC 9562 §4: Depot writes every UUID in lowercase and reads either case. Foundation's
/// `uuidString` (and so `JSONEncoder`'s UUID and `"\(uuid)"`) is uppercase: write ids through
/// `canonicalText`, never through those.
extension UUID {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase.
    public var canonicalText: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                let digits: StaticString = "0123456789abcdef"
                var index = 0
                for (position, byte) in bytes.enumerated() {
                    if position == 4 || position == 6 || position == 8 || position == 10 {
                        out[index] = UInt8(ascii: "-")
                        index += 1
                    }
                    out[index] = digits.utf8Start[Int(byte >> 4)]
                    out[index + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    index += 2
                }
                return index
            }
        }
    }

    /// Reads `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (either case) by hand; Foundation's parser
    /// calls sscanf, which showed in the profile of a rebuild.
    public init?(canonicalText text: String) {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let utf8 = Array(text.utf8)
        guard utf8.count == 36 else { return nil }
        let ok = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            var index = 0
            for byte in 0..<16 {
                if index == 8 || index == 13 || index == 18 || index == 23 {
                    guard utf8[index] == UInt8(ascii: "-") else { return false }
                    index += 1
                }
                guard let high = hexDigitValue(utf8[index]), let low = hexDigitValue(utf8[index + 1]) else {
                    return false
                }
                out[byte] = high << 4 | low
                index += 2
            }
            return true
        }
        guard ok else { return nil }
        self.init(uuid: bytes)
    }
}

// Codable conformances synthesized where these are visible (every module that imports
// DepotModel) encode UUID fields through them instead of Foundation's uppercase form.
extension KeyedEncodingContainer {
    public mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.canonicalText, forKey: key)
    }

    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value.canonicalText, forKey: key)
    }
}
