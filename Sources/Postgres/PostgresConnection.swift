import CLibPQ
import Foundation

/// One libpq connection. Borrow it from `PostgresPool`; never keep it past the closure.
///
/// Confinement: the pool lends a connection to one task at a time, and every libpq call on it
/// runs on the connection's own `ConnectionThread` and is awaited before the next, so `handle`
/// is only ever touched by that thread — never by an event loop or the cooperative pool.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    private var preparedStatements: [String: String] = [:]
    let thread: ConnectionThread
    var lastReleased = ContinuousClock.now
    /// Inside `withTransaction`, BEGIN waits to travel with the first statement (one round trip).
    var beginPending = false
    /// Statements whose results nobody reads, waiting to travel with the next statement or the COMMIT.
    var deferred: [PostgresQuery] = []
    /// Set once the connection has failed at the transport level; the pool drops it.
    public private(set) var isBroken = false

    private init(handle: OpaquePointer, thread: ConnectionThread) {
        self.handle = handle
        self.thread = thread
    }

    deinit {
        // PQfinish writes to the socket: do it on the connection's thread, not wherever the last reference died.
        if let handle {
            let finish = UnsafeSendableHandle(handle)
            thread.execute { PQfinish(finish.handle) }
        }
        thread.stop()
    }

    static func connect(_ configuration: PostgresConfiguration) async throws -> PostgresConnection {
        let thread = ConnectionThread(name: "postgres-connection")
        do {
            return try await run(on: thread) { () throws(PostgresError) -> PostgresConnection in
                let handle = try openHandle(configuration)
                return PostgresConnection(handle: handle, thread: thread)
            }
        } catch {
            thread.stop()
            throw error
        }
    }

    /// Runs `body` on `thread`: directly when already there (inside a lease), else by a hop.
    private static func run<T: Sendable>(
        on thread: ConnectionThread, _ body: @escaping @Sendable () throws(PostgresError) -> T
    ) async throws -> T {
        if thread.isCurrent { return try body() }
        return try await withCheckedThrowingContinuation { continuation in
            thread.execute {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws(PostgresError) -> T) async throws -> T {
        try await Self.run(on: thread, body)
    }

    /// Opens a libpq connection (UTC, ISO dates, no statement timeout, notices silenced); the
    /// caller's thread blocks.
    ///
    /// `statement_timeout=0` overrides one set on the role or database: a timeout that fires
    /// while a COMMIT waits for its synchronous standby returns success with only a warning,
    /// leaving a transaction on the primary alone that Depot would then acknowledge.
    static func openHandle(_ configuration: PostgresConfiguration) throws(PostgresError) -> OpaquePointer {
        let timeout = max(1, configuration.options.connectTimeout.components.seconds)
        let keywords = ["dbname", "connect_timeout", "application_name", "options"]
        let values = [
            configuration.url, "\(timeout)", configuration.options.applicationName,
            "-c TimeZone=UTC -c DateStyle=ISO -c statement_timeout=0",
        ]
        let handle = withCStringArray(keywords) { k in withCStringArray(values) { v in PQconnectdbParams(k, v, 1) } }
        guard let handle else { throw PostgresError(.connectionFailed, message: "out of memory") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).split(whereSeparator: \.isNewline)
                .map { String($0).trimmingCharacters(in: " \t") }.joined(separator: " ")
            PQfinish(handle)
            throw PostgresError(.connectionFailed, message: message)
        }
        // Server notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        return handle
    }

    // MARK: - Statements

    /// Runs one statement and returns its rows. Statements with parameters are prepared once
    /// per connection and executed with `PQexecPrepared`.
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await onThread { () throws(PostgresError) in try self.run(query) }
    }

    /// Runs one statement and returns the number of rows it affected.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await self.query(query).affectedRows
    }

    /// Queues a statement whose result is not needed; it is sent in one round trip with the next
    /// statement (or the transaction's COMMIT), in order, so later statements see its effect.
    /// Its error, if any, is thrown by that next statement. Call only from the lease's task.
    public func executeLater(_ query: PostgresQuery) {
        deferred.append(query)
    }

    /// Sends the deferred statements now (one round trip).
    public func flush() async throws {
        guard !deferred.isEmpty else { return }
        _ = try await onThread { () throws(PostgresError) in try self.runPipeline(self.takePending()) }
    }

    /// Runs several `;`-separated statements without parameters (migrations).
    public func executeScript(unescaped sql: String) async throws {
        try await onThread { () throws(PostgresError) in
            let handle = try self.requireHandle()
            let prefix = self.takePending()
            if !prefix.isEmpty { _ = try self.runPipeline(prefix) }
            _ = try self.check(PQexec(handle, sql), query: String(sql.prefix(200)))
        }
    }

    /// Runs every statement in one round trip (libpq pipeline mode) and returns each one's rows.
    /// The first failing statement's error is thrown; later statements in the batch are skipped
    /// by the server. Wrap in a transaction for all-or-nothing.
    public func pipeline(_ queries: [PostgresQuery]) async throws -> [PostgresRows] {
        try await onThread { () throws(PostgresError) in try self.runPipeline(queries) }
    }

    // MARK: - Health

    /// Reads whatever the server sent while the connection sat idle; false when it has gone
    /// (a server restart leaves a closed socket behind).
    func isAlive() async -> Bool {
        (try? await onThread { () -> Bool in
            guard let handle = self.handle else { return false }
            // The first read may return the server's goodbye (57P01); only the next one sees EOF.
            for _ in 0..<2 where PQconsumeInput(handle) == 0 { return false }
            return PQstatus(handle) == CONNECTION_OK
        }) ?? false
    }

    func close() async {
        _ = try? await onThread {
            if let handle = self.handle { PQfinish(handle) }
            self.handle = nil
        }
        thread.stop()
    }

    // MARK: - On the thread pool only

    private func requireHandle() throws(PostgresError) -> OpaquePointer {
        guard let handle, !isBroken else { throw PostgresError(.connectionClosed, message: "the connection is closed") }
        return handle
    }

    /// BEGIN (if it waits) and the deferred statements, to send before the next statement.
    private func takePending() -> [PostgresQuery] {
        var prefix: [PostgresQuery] = beginPending ? ["BEGIN"] : []
        prefix += deferred
        beginPending = false
        deferred = []
        return prefix
    }

    private func run(_ query: PostgresQuery) throws(PostgresError) -> PostgresRows {
        let handle = try requireHandle()
        let prefix = takePending()
        if !prefix.isEmpty { return try runPipeline(prefix + [query]).last! }
        guard let name = try prepare(query, on: handle) else {
            // Past the cache's bound: run unnamed, with its parameters.
            let result = query.parameterTypes.withUnsafeBufferPointer { typeOIDs in
                withParameters(query.binds) { count, values, lengths, formats in
                    PQexecParams(handle, query.sql, count, typeOIDs.baseAddress, values, lengths, formats, 0)
                }
            }
            return try check(result, query: query.sql)
        }
        let result = withParameters(query.binds) { count, values, lengths, formats in
            PQexecPrepared(handle, name, count, values, lengths, formats, 0)
        }
        return try check(result, query: query.sql)
    }

    /// Statements are prepared once per connection and then executed by name, up to a bound
    /// that keeps one-off statements from growing the cache for ever (those run unnamed).
    private func prepare(_ query: PostgresQuery, on handle: OpaquePointer) throws(PostgresError) -> String? {
        let types = query.parameterTypes
        let key = types.isEmpty ? query.sql : query.sql + "\u{0}" + types.map(String.init).joined(separator: ",")
        if let name = preparedStatements[key] { return name }
        guard preparedStatements.count < 512 else { return nil }
        let name = "depot_\(preparedStatements.count + 1)"
        let result = types.withUnsafeBufferPointer {
            PQprepare(handle, name, query.sql, Int32(types.count), $0.baseAddress)
        }
        _ = try check(result, query: query.sql)
        preparedStatements[key] = name
        return name
    }

    private func runPipeline(_ queries: [PostgresQuery]) throws(PostgresError) -> [PostgresRows] {
        let handle = try requireHandle()
        let prefix = takePending()
        if !prefix.isEmpty { return Array(try runPipeline(prefix + queries).dropFirst(prefix.count)) }
        guard queries.count > 1 else { return try queries.map { q throws(PostgresError) in try run(q) } }
        // Prepare outside the pipeline (PQprepare is synchronous), then send everything at once.
        var names: [String?] = []
        for query in queries { names.append(try prepare(query, on: handle)) }
        guard PQenterPipelineMode(handle) == 1 else { throw connectionError(handle, query: nil) }
        // A pipeline cut short (the server went away mid-way) leaves results unread: such a
        // connection would fail every later statement with "cannot exit pipeline mode while busy".
        defer { if PQexitPipelineMode(handle) != 1 { isBroken = true } }
        for (query, name) in zip(queries, names) {
            let sent: Int32
            if let name {
                sent = withParameters(query.binds) { count, values, lengths, formats in
                    PQsendQueryPrepared(handle, name, count, values, lengths, formats, 0)
                }
            } else {
                sent = PQsendQueryParams(handle, query.sql, 0, nil, nil, nil, nil, 0)
            }
            guard sent == 1 else { throw connectionError(handle, query: query.sql) }
        }
        guard PQpipelineSync(handle) == 1 else { throw connectionError(handle, query: nil) }

        var rows: [PostgresRows] = []
        var firstError: PostgresError?
        for query in queries {
            // Each statement yields its result(s), then a NULL.
            var result = PQgetResult(handle)
            guard result != nil else { throw connectionError(handle, query: query.sql) }
            while let current = result {
                if PQresultStatus(current) == PGRES_PIPELINE_ABORTED {
                    PQclear(current)
                } else {
                    do { rows.append(try check(current, query: query.sql)) } catch { firstError = firstError ?? error }
                }
                result = PQgetResult(handle)
            }
        }
        // Finally the sync point.
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
        if let firstError { throw firstError }
        return rows
    }

    private func connectionError(_ handle: OpaquePointer, query: String?) -> PostgresError {
        if PQstatus(handle) != CONNECTION_OK { isBroken = true }
        return PostgresError(
            isBroken ? .connectionClosed : .server,
            message: String(cString: PQerrorMessage(handle)).trimmingCharacters(in: " \n"),
            query: query)
    }

    /// The funnel: every libpq result becomes rows or a PostgresError here, and is cleared.
    private func check(_ result: OpaquePointer?, query: String) throws(PostgresError) -> PostgresRows {
        guard let handle else { throw PostgresError(.connectionClosed, message: "the connection is closed") }
        guard let result else { throw connectionError(handle, query: query) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            return copyRows(result)
        default:
            func field(_ code: Int) -> String? {
                guard let value = PQresultErrorField(result, Int32(code)) else { return nil }
                return String(cString: value)
            }
            let broken = PQstatus(handle) != CONNECTION_OK
            let message =
                field(CLibPQ_DIAG_MESSAGE_PRIMARY)
                ?? String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: " \n")
            let error = PostgresError(
                broken ? .connectionClosed : .server,
                code: field(CLibPQ_DIAG_SQLSTATE).map(PostgresError.Code.init(raw:)), message: message,
                detail: field(CLibPQ_DIAG_MESSAGE_DETAIL),
                hint: field(CLibPQ_DIAG_MESSAGE_HINT),
                constraint: field(CLibPQ_DIAG_CONSTRAINT_NAME), table: field(CLibPQ_DIAG_TABLE_NAME),
                column: field(CLibPQ_DIAG_COLUMN_NAME), query: query)
            // A session the server ended cannot be used again, and a read-only server (a standby
            // where the primary was, mid-failover) will never take this connection's writes: the
            // pool drops the connection, and the next one finds a usable server.
            if broken || error.endsSession || error.code == .readOnlyTransaction { isBroken = true }
            throw error
        }
    }

    private func copyRows(_ result: OpaquePointer) -> PostgresRows {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var cells: [[String?]] = []
        cells.reserveCapacity(rowCount)
        for row in 0..<Int32(rowCount) {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                values.append(
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column)))
            }
            cells.append(values)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, cells: cells, affectedRows: affected)
    }
}

/// Lays the parameters out for libpq: one buffer, NUL-terminated text values, binary ones as is.
private func withParameters<R>(
    _ binds: [PostgresBind?],
    _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<Int32>, UnsafePointer<Int32>) -> R
) -> R {
    var storage: [UInt8] = []
    storage.reserveCapacity(binds.reduce(0) { $0 + ($1?.bytes.count ?? 0) + 1 })
    var offsets: [Int?] = []
    var lengths: [Int32] = []
    var formats: [Int32] = []
    for bind in binds {
        guard let bind else {
            offsets.append(nil)
            lengths.append(0)
            formats.append(0)
            continue
        }
        offsets.append(storage.count)
        storage.append(contentsOf: bind.bytes)
        storage.append(0)
        lengths.append(Int32(bind.bytes.count))
        formats.append(bind.isBinary ? 1 : 0)
    }
    return storage.withUnsafeBufferPointer { buffer in
        let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
        let values: [UnsafePointer<CChar>?] = offsets.map { $0.map { base + $0 } }
        return values.withUnsafeBufferPointer { v in
            lengths.withUnsafeBufferPointer { l in
                formats.withUnsafeBufferPointer { f in
                    body(Int32(binds.count), v.baseAddress!, l.baseAddress!, f.baseAddress!)
                }
            }
        }
    }
}

func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { for duplicate in duplicates { free(duplicate) } }
    let pointers: [UnsafePointer<CChar>?] = duplicates.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Checks a connection string with libpq's own parser.
func validateConnectionString(_ url: String) throws {
    var errorMessage: UnsafeMutablePointer<CChar>?
    guard let options = PQconninfoParse(url, &errorMessage) else {
        let message = errorMessage.map { String(cString: $0) } ?? "invalid connection string"
        if let errorMessage { PQfreemem(errorMessage) }
        throw PostgresError(.invalidConfiguration, message: message.trimmingCharacters(in: " \n"))
    }
    defer { PQconninfoFree(options) }
    // libpq checks these values only when it connects, where a typo would look like an outage.
    let choices = [
        "target_session_attrs": ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]
    ]
    var option = options
    while let keyword = option.pointee.keyword {
        if let allowed = choices[String(cString: keyword)], let value = option.pointee.val,
            !allowed.contains(String(cString: value))
        {
            throw PostgresError(
                .invalidConfiguration,
                message:
                    "\(String(cString: keyword))=\(String(cString: value)) is not one of \(allowed.joined(separator: ", "))"
            )
        }
        option += 1
    }
}

/// Carries a `PGconn *` to its connection thread for the final `PQfinish`; nothing else holds it by then.
private struct UnsafeSendableHandle: @unchecked Sendable {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
}

extension PostgresQuery {
    /// The parameters' type OIDs as libpq takes them; 0 (a NULL) lets the server infer one.
    fileprivate var parameterTypes: [UInt32] { binds.map { $0?.typeOID ?? 0 } }
}
