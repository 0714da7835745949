/// A SQL statement whose interpolated values become bound parameters (`$1`, `$2`, …).
///
/// Values are never spliced into the SQL text: `"SELECT * FROM t WHERE name = \(name)"` sends
/// `… WHERE name = $1` with `name` as a separate parameter. Raw SQL (an identifier chosen by
/// the program, never by a user) goes in only through `\(unescaped: …)`.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation {
    public private(set) var sql: String
    public private(set) var binds: [PostgresBind?]

    public init(unescaped sql: String) {
        self.sql = sql
        self.binds = []
    }

    public init(stringLiteral value: String) {
        self.init(unescaped: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.binds = stringInterpolation.binds
    }

    /// Appends another statement fragment, renumbering its parameters to follow this one's.
    /// Both must be program-written SQL whose only `$n` are parameter placeholders.
    public mutating func append(_ other: PostgresQuery) {
        let offset = binds.count
        var result = ""
        var index = other.sql.startIndex
        while index < other.sql.endIndex {
            let character = other.sql[index]
            index = other.sql.index(after: index)
            result.append(character)
            guard character == "$" else { continue }
            let digits = other.sql[index...].prefix { $0.isASCII && $0.isNumber }
            guard let number = Int(digits) else { continue }
            result += String(number + offset)
            index = digits.endIndex
        }
        sql += result
        binds += other.binds
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresBind)
            sql += "$\(binds.count)"
        }

        public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
            binds.append(value?.postgresBind)
            sql += "$\(binds.count)"
        }

        /// Appends SQL text as it is. Only for text the program itself chose.
        public mutating func appendInterpolation(unescaped text: String) {
            sql += text
        }
    }
}
