/// The rows a statement returned, copied out of libpq's result.
public struct PostgresRows: Sendable, Sequence {
    public let columns: [String]
    let cells: [[String?]]
    /// Rows inserted, updated or deleted, for statements that report it.
    public let affectedRows: Int

    public var count: Int { cells.count }
    public var isEmpty: Bool { cells.isEmpty }
    public var first: PostgresRow? { cells.first.map { PostgresRow(columns: columns, cells: $0) } }

    public subscript(index: Int) -> PostgresRow { PostgresRow(columns: columns, cells: cells[index]) }

    public func makeIterator() -> some IteratorProtocol<PostgresRow> {
        cells.lazy.map { PostgresRow(columns: columns, cells: $0) }.makeIterator()
    }
}

/// One row; read a column by position or name with a target type.
public struct PostgresRow: Sendable {
    public let columns: [String]
    let cells: [String?]

    public func isNull(_ column: Int) -> Bool { cells[column] == nil }

    public func decode<T: PostgresDecodable>(_ column: Int, as type: T.Type = T.self) throws -> T {
        guard column < cells.count else {
            throw PostgresError(.decoding, message: "no column \(column) (the row has \(cells.count))")
        }
        guard let text = cells[column] else {
            throw PostgresError(.decoding, message: "column \(columns[column]) is NULL; decode it as an Optional")
        }
        return try T(postgresText: text)
    }

    public func decode<T: PostgresDecodable>(_ column: Int, as type: T?.Type) throws -> T? {
        guard column < cells.count else {
            throw PostgresError(.decoding, message: "no column \(column) (the row has \(cells.count))")
        }
        return try cells[column].map { try T(postgresText: $0) }
    }

    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try decode(try index(of: column), as: type)
    }

    public func decode<T: PostgresDecodable>(_ column: String, as type: T?.Type) throws -> T? {
        try decode(try index(of: column), as: type)
    }

    private func index(of name: String) throws -> Int {
        guard let index = columns.firstIndex(of: name) else {
            throw PostgresError(
                .decoding, message: "no column named \(name) (columns: \(columns.joined(separator: ", ")))")
        }
        return index
    }
}
