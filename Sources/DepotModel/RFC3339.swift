import CivilDate
import Foundation

/// RFC 3339 times as Depot writes them (`2026-01-01T12:00:00.123Z`, any fraction, `Z` or an
/// offset), read without Foundation's format styles; nil for anything else.
public enum RFC3339 {
    public static func date(_ text: String) -> Date? {
        var utf8 = Array(text.utf8)[...]
        func number(_ digits: Int) -> Int? {
            guard utf8.count >= digits else { return nil }
            var value = 0
            for byte in utf8.prefix(digits) {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            utf8 = utf8.dropFirst(digits)
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard let byte = utf8.first, characters.utf8.contains(byte) else { return false }
            utf8 = utf8.dropFirst()
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt"), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var fraction = 0.0
        if expect(".") {
            // As one integer over a power of ten: .123 is then the same double Foundation reads.
            var numerator = 0
            var denominator = 1
            var digits = 0
            while let byte = utf8.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                if digits < 9 {
                    numerator = numerator * 10 + Int(byte - UInt8(ascii: "0"))
                    denominator *= 10
                }
                digits += 1
                utf8 = utf8.dropFirst()
            }
            guard digits > 0 else { return nil }
            fraction = Double(numerator) / Double(denominator)
        }
        var offset = 0
        if !expect("Zz") {
            guard let sign = utf8.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
            utf8 = utf8.dropFirst()
            guard let hours = number(2), expect(":"), let minutes = number(2), hours < 24, minutes < 60 else {
                return nil
            }
            offset = (hours * 60 + minutes) * 60 * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard utf8.isEmpty else { return nil }
        let days = CivilDate.days(year: year, month: month, day: day)
        guard CivilDate.date(days: days) == (year, month, day) else { return nil }  // no 31 February
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// `date(_:)`, then what Foundation's ISO 8601 styles also read (the Codable path's
    /// fallbacks), so every reader of Depot's times accepts the same texts.
    public static func anyDate(_ text: String) -> Date? {
        date(text) ?? (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }
}

extension RFC3339 {
    /// `2026-01-01T12:00:00.123Z`: UTC, milliseconds, as Foundation's
    /// `ISO8601FormatStyle(includingFractionalSeconds: true)` writes it, without its cost (it was
    /// a large part of encoding every envelope).
    public static func string(_ date: Date) -> String {
        // Whole seconds, then the fraction truncated to milliseconds, as Foundation does, except
        // that a fraction a microsecond short of the next millisecond counts as it: a time read
        // from ".123" is a double just below 0.123, and must be written as ".123" again.
        let interval = date.timeIntervalSince1970
        let wholeSeconds = interval.rounded(.down)
        let fraction = Int(((interval - wholeSeconds) * 1000 + 0.001).rounded(.down))
        let milliseconds = Int(wholeSeconds) * 1000 + min(999, fraction)
        let (days, inDay) = milliseconds.quotientAndRemainder(dividingBy: 86_400_000)
        let (day, time) = inDay < 0 ? (days - 1, inDay + 86_400_000) : (days, inDay)
        let (year, month, dayOfMonth) = CivilDate.date(days: day)
        // Four digits only: anything else (never written by Depot) is Foundation's to spell.
        guard (0...9999).contains(year) else {
            return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var index = 0
            func put(_ value: Int, digits: Int) {
                var divisor = 1
                for _ in 1..<digits { divisor *= 10 }
                var rest = value
                while divisor > 0 {
                    buffer[index] = UInt8(ascii: "0") + UInt8(rest / divisor)
                    rest %= divisor
                    divisor /= 10
                    index += 1
                }
            }
            func put(_ character: Unicode.Scalar) {
                buffer[index] = UInt8(ascii: character)
                index += 1
            }
            put(year, digits: 4)
            put("-")
            put(month, digits: 2)
            put("-")
            put(dayOfMonth, digits: 2)
            put("T")
            put(time / 3_600_000, digits: 2)
            put(":")
            put(time / 60_000 % 60, digits: 2)
            put(":")
            put(time / 1000 % 60, digits: 2)
            put(".")
            put(time % 1000, digits: 3)
            put("Z")
            return index
        }
    }
}
