import DepotModel
import Foundation
import Logging
import Synchronization

/// Logs one JSON object (or one readable line) per event to stderr.
public struct DepotLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: Settings.LogFormat

    public init(label: String, level: Logger.Level, format: Settings.LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let timestamp = RFC3339.string(Date())
        let line: String
        switch format {
        case .json:
            var object: [String: Any] = [
                "ts": timestamp, "level": event.level.rawValue, "logger": label, "msg": "\(event.message)",
            ]
            for (key, value) in merged { object[key] = jsonValue(value) }
            let data =
                (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data()
            line = String(decoding: data, as: UTF8.self)
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line =
                "\(timestamp) \(event.level.rawValue.uppercased()) \(label): \(event.message)\(fields.isEmpty ? "" : " " + fields)"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private func jsonValue(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): "\(c)"
        case .array(let a): a.map(jsonValue)
        case .dictionary(let d): d.mapValues(jsonValue)
        }
    }
}

private let bootstrapped = Mutex(false)

/// Installs Depot's log handler once per process.
public func bootstrapLogging(_ settings: Settings) {
    let first = bootstrapped.withLock { done -> Bool in
        defer { done = true }
        return !done
    }
    guard first else { return }
    LoggingSystem.bootstrap { label in
        DepotLogHandler(label: label, level: settings.logLevel, format: settings.logFormat)
    }
}
