import AMQP
import DepotModel
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Operations
import Postgres

/// The admin API of docs/interface.md §3.9 (`/v1/admin/…`, admin tokens only): what the
/// console shows and does, for scripts too. It runs the operator code of `Sources/Operations`
/// — `depot status`, `depot dlq`, `depot replay projections --dry-run` — so the guarantees are
/// the CLI's. Every state-changing request is a POST that starts a job (`AdminJobs`) and is
/// written to the log with the operator's `sub`.
struct AdminRoutes: Sendable {
    let admin: any AdminOperating
    let jobs: AdminJobs
    let history: AdminFlowHistory

    enum Fields {
        static let redrive: Set<String> = ["message_id", "reason"]
        static let replayDryRun: Set<String> = ["projections"]
    }

    // MARK: - Overview and charts

    struct Overview: Encodable {
        var brokerConnected: Bool
        var report: SystemStatus.Report

        enum CodingKeys: String, CodingKey {
            case brokerConnected, queues, outboxes, projections, connections, health
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(brokerConnected, forKey: .brokerConnected)
            try container.encode(report.queues, forKey: .queues)
            try container.encode(report.outboxes, forKey: .outboxes)
            try container.encode(report.projections, forKey: .projections)
            try container.encode(report.connections, forKey: .connections)
            try container.encode(report.health, forKey: .health)
        }
    }

    func overview(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let report = try await admin.overview()
        return try Self.json(Overview(brokerConnected: admin.brokerConnected, report: report), snakeCase: true)
    }

    func flow(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let window = request.uri.queryParameters["window"].map(String.init) ?? "5m"
        let series: AdminFlowHistory.Series
        switch window {
        case "5m": series = history.series(window: 300, step: 5)
        case "1h": series = history.series(window: 3_600, step: 60)
        default: throw Problem.invalid("window", "must be 5m or 1h")
        }
        return try Self.json(series)
    }

    // MARK: - Dead letters

    struct ReasonCount: Encodable {
        var reason: String
        var count: Int
    }

    struct DeadLetterQueue: Encodable {
        var queue: String
        var count: Int
        var oldest: String?
        var reasons: [ReasonCount]
    }

    struct Header: Encodable {
        var name: String
        var value: String
    }

    struct DeadLetter: Encodable {
        var messageId: String?
        var type: String?
        var correlationId: String?
        var reason: String
        var reasonKind: String
        var attempts: Int
        var originalExchange: String
        var originalRoutingKey: String
        var originalQueue: String
        var deadLetteredAt: String?
        var headers: [Header]
        var body: String

        enum CodingKeys: String, CodingKey {
            case type, reason, attempts, headers, body
            case messageId = "message_id"
            case correlationId = "correlation_id"
            case reasonKind = "reason_kind"
            case originalExchange = "original_exchange"
            case originalRoutingKey = "original_routing_key"
            case originalQueue = "original_queue"
            case deadLetteredAt = "dead_lettered_at"
        }

        init(_ letter: DeadLetters.Letter) {
            messageId = letter.messageId
            type = letter.type
            correlationId = letter.correlationId
            reason = letter.reason
            reasonKind = letter.reasonKind
            attempts = letter.attempts
            originalExchange = letter.originalExchange
            originalRoutingKey = letter.originalRoutingKey
            originalQueue = letter.originalQueue
            deadLetteredAt = letter.deadLetteredAt
            headers = letter.headers.sorted { $0.key < $1.key }.map { Header(name: $0.key, value: $0.value) }
            body = letter.body
        }
    }

    struct DeadLetterPage: Encodable {
        var queue: String
        var count: Int
        var items: [DeadLetter]
    }

    func deadLetterQueues(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let items = try await broker { () -> [DeadLetterQueue] in
            var items: [DeadLetterQueue] = []
            for queue in DeadLetters.queues where try await admin.depth(of: queue) != nil {
                let summary = try await admin.summary(of: queue)
                items.append(
                    DeadLetterQueue(
                        queue: queue, count: summary.count, oldest: summary.oldest,
                        reasons: summary.reasons.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map {
                            ReasonCount(reason: $0.key, count: $0.value)
                        }))
            }
            return items
        }
        return try Self.json(Items(items: items))
    }

    func deadLetters(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let limit = try Self.limit(request, default: 20, maximum: 100)
        let queue = try await existingQueue(context)
        let (count, letters) = try await broker {
            (try await admin.depth(of: queue) ?? 0, try await admin.peek(queue, limit: limit))
        }
        return try Self.json(DeadLetterPage(queue: queue, count: count, items: letters.map(DeadLetter.init)))
    }

    func redrive(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let caller = try context.requireAdmin()
        var body = try await FieldReader.body(request, context: context, allowed: Fields.redrive)
        let messageId = body.string("message_id", required: false, length: 1...200)
        let reason = body.string("reason", required: false, length: 1...200)
        if messageId != nil && reason != nil { body.fail("body", "give message_id or reason, not both") }
        try body.finish()
        let queue = try await existingQueue(context)
        let selection: DeadLetters.Selection =
            messageId.map { .message(id: $0) } ?? reason.map { .reason(kind: DeadLetters.Letter.kind(of: $0)) } ?? .all
        let described = messageId.map { "message \($0)" } ?? reason.map { "reason \($0)" } ?? "all"
        // How many there are to move, when that is known without reading the queue.
        var expected: Int64?
        switch selection {
        case .all: expected = try await depth(of: queue).map(Int64.init)
        case .message: expected = 1
        case .reason: expected = nil
        }
        let total = expected
        let admin = self.admin
        return try await start(
            request, context, caller: caller, kind: "redrive", target: queue, selection: described
        ) { progress in
            progress(done: 0, total: total)
            let outcome = try await admin.redrive(queue, selection: selection) {
                progress(done: Int64($0), total: total)
            }
            return (
                "redrove \(outcome.moved) message(s) from \(queue); \(outcome.left) left",
                AdminJobs.JobResult(redriven: outcome.moved, remaining: outcome.left)
            )
        }
    }

    func purge(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let caller = try context.requireAdmin()
        let queue = try await existingQueue(context)
        let admin = self.admin
        return try await start(request, context, caller: caller, kind: "purge", target: queue) { progress in
            let purged = try await admin.purge(queue)
            progress(done: Int64(purged), total: Int64(purged))
            return ("purged \(purged) message(s) from \(queue)", AdminJobs.JobResult(purged: purged, remaining: 0))
        }
    }

    /// The dead-letter queue named in the path: 404 unless it is one of Depot's and declared.
    func existingQueue(_ context: EdgeContext) async throws -> String {
        let queue = try context.parameters.require("queue")
        guard DeadLetters.queues.contains(queue) else {
            throw Problem.notFound(
                "no dead-letter queue \(queue.prefix(64)); they are \(DeadLetters.queues.joined(separator: ", "))")
        }
        guard try await depth(of: queue) != nil else {
            throw Problem.notFound("\(queue) is not declared yet: its component has not run")
        }
        return queue
    }

    // MARK: - Replay and orders

    func replayDryRun(_ request: Request, _ context: EdgeContext) async throws -> Response {
        let caller = try context.requireAdmin()
        var body = try await FieldReader.body(request, context: context, allowed: Fields.replayDryRun)
        var projections: [String] = []
        switch body.fields["projections"] {
        case nil: break
        case .array(let items)?:
            for (index, item) in items.enumerated() {
                guard case .string(let name) = item, ProjectionRebuild.tables[name] != nil else {
                    body.errors.append(.init(field: "projections[\(index)]", message: "must be orders or products"))
                    continue
                }
                if !projections.contains(name) { projections.append(name) }
            }
        case let other?: body.fail("projections", "must be an array, not \(other.typeName)")
        }
        try body.finish()
        let admin = self.admin
        let chosen = projections
        let names = chosen.isEmpty ? ProjectionRebuild.tables.keys.sorted() : chosen.sorted()
        return try await start(
            request, context, caller: caller, kind: "replay-dry-run", target: names.joined(separator: ",")
        ) { progress in
            let differences = try await admin.replayDryRun(projections: chosen) {
                progress(done: $0.done, total: $0.total)
            }
            let rows = differences.reduce(0) { $0 + $1.added + $1.removed + $1.different }
            return (
                rows == 0
                    ? "no differences: the live projections equal a rebuild from the log"
                    : "\(rows) rows differ; `depot replay projections` would replace them",
                AdminJobs.JobResult(
                    differences: differences.map {
                        .init(
                            table: $0.table, added: $0.added, removed: $0.removed, different: $0.different,
                            samples: $0.samples)
                    })
            )
        }
    }

    struct RebuildCheck: Encodable {
        var orderId: String
        var events: Int
        var matches: Bool
        var live: AnyJSON?
        var rebuilt: AnyJSON?
        var liveHistory: Int
        var rebuiltHistory: Int

        enum CodingKeys: String, CodingKey {
            case events, matches, live, rebuilt
            case orderId = "order_id"
            case liveHistory = "live_history"
            case rebuiltHistory = "rebuilt_history"
        }
    }

    func rebuildCheck(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        guard let id = UUID(canonicalText: try context.parameters.require("id")) else {
            throw Problem.notFound("no such order")
        }
        guard let outcome = try await admin.rebuildCheck(order: id) else {
            throw Problem.notFound("the event log has no event of order \(id.canonicalText)")
        }
        func parsed(_ text: String?) -> AnyJSON? {
            text.flatMap { try? JSONValue.parse(Array($0.utf8)) }.map(AnyJSON.init)
        }
        return try Self.json(
            RebuildCheck(
                orderId: outcome.orderId, events: outcome.events, matches: outcome.matches, live: parsed(outcome.live),
                rebuilt: parsed(outcome.rebuilt), liveHistory: outcome.liveHistory,
                rebuiltHistory: outcome.rebuiltHistory))
    }

    /// A row read as JSON, written back as it is.
    struct AnyJSON: Encodable {
        let value: JSONValue

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            switch value {
            case .object(let members):
                var container = encoder.container(keyedBy: Key.self)
                for member in members {
                    try container.encode(AnyJSON(value: member.value), forKey: Key(stringValue: member.key))
                }
            case .array(let items):
                var container = encoder.unkeyedContainer()
                for item in items { try container.encode(AnyJSON(value: item)) }
            case .null:
                var container = encoder.singleValueContainer()
                try container.encodeNil()
            case .bool(let flag):
                var container = encoder.singleValueContainer()
                try container.encode(flag)
            case .integer(let number):
                var container = encoder.singleValueContainer()
                try container.encode(number)
            case .double(let number):
                var container = encoder.singleValueContainer()
                try container.encode(number)
            case .string(let text):
                var container = encoder.singleValueContainer()
                try container.encode(text)
            }
        }
    }

    // MARK: - Jobs

    struct Items<Item: Encodable>: Encodable { var items: [Item] }

    func listJobs(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let limit = try Self.limit(request, default: 20, maximum: AdminJobs.kept)
        return try Self.json(Items(items: try await jobs.recent(limit: limit)))
    }

    func getJob(_ request: Request, _ context: EdgeContext) async throws -> Response {
        _ = try context.requireAdmin()
        let id = try context.parameters.require("id").lowercased()
        guard let job = try await jobs.job(id) else {
            throw Problem.notFound("no job \(id.prefix(64)) (jobs are kept 30 days)")
        }
        return try Self.json(job)
    }

    /// Queues a job, logs it with the operator's `sub`, and answers 202 with the job and its
    /// `Location` — or, with `Prefer: wait=N`, 200 once it has finished within N seconds.
    func start(
        _ request: Request, _ context: EdgeContext, caller: Caller, kind: String, target: String,
        selection: String? = nil, work: @escaping AdminJobs.Work
    ) async throws -> Response {
        guard
            let job = await jobs.submit(
                kind: kind, target: target, selection: selection, by: caller.subject, work: work)
        else {
            // The caller asks faster than the jobs run: like the rate limit, a 429 with Retry-After.
            throw Problem(
                .tooManyRequests, "\(AdminJobs.maximumQueued) admin jobs are waiting already; retry later",
                headers: [.retryAfter: "5"])
        }
        context.logger.info(
            "admin action",
            metadata: [
                "audit": "true", "sub": "\(caller.subject)", "action": "\(kind)", "target": "\(target)",
                "selection": "\(selection ?? "-")", "job": "\(job.id)",
            ])
        var answer = job
        var status = HTTPResponse.Status.accepted
        if let seconds = EdgeRoutes.preferredWait(request), seconds > 0,
            let waited = await jobs.wait(for: job.id, until: .now + .seconds(seconds))
        {
            answer = waited
            if waited.state == .succeeded || waited.state == .failed { status = .ok }
        }
        var response = try Self.json(answer, status: status)
        response.headers[.location] = "/v1/admin/jobs/\(job.id)"
        if status == .ok, let seconds = EdgeRoutes.preferredWait(request) {
            response.headers[HTTPField.Name("Preference-Applied")!] = "wait=\(seconds)"
        }
        return response
    }

    // MARK: - Helpers

    /// Messages in `queue` (nil when it does not exist); 503 while the broker is away.
    func depth(of queue: String) async throws -> Int? {
        guard admin.brokerConnected else {
            throw Problem.unavailable("the broker is unreachable; nothing was done", retryAfter: 5)
        }
        do {
            return try await admin.depth(of: queue)
        } catch let error as AMQPError {
            throw Problem.unavailable(
                "the broker did not answer (\(String(describing: error).prefix(120))); nothing was done",
                retryAfter: 5)
        }
    }

    /// Broker work: 503 while the broker is away, never 500.
    func broker<T>(_ body: () async throws -> T) async throws -> T {
        guard admin.brokerConnected else {
            throw Problem.unavailable("the broker is unreachable; nothing was done", retryAfter: 5)
        }
        do {
            return try await body()
        } catch let error as AMQPError {
            throw Problem.unavailable(
                "the broker did not answer (\(String(describing: error).prefix(120))); nothing was done",
                retryAfter: 5)
        }
    }

    static func limit(_ request: Request, default value: Int, maximum: Int) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return value }
        guard let limit = Int(text), (1...maximum).contains(limit) else {
            throw Problem.invalid("limit", "must be a whole number from 1 to \(maximum)")
        }
        return limit
    }

    static let snakeCaseEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }()

    /// JSON with sorted keys; `snakeCase` for the Operations types (the spelling of `depot status --json`).
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, snakeCase: Bool = false) throws
        -> Response
    {
        let data = try (snakeCase ? snakeCaseEncoder : EdgeRoutes.encoder).encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
