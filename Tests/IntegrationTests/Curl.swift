import Foundation

/// HTTP through the `curl` executable: FoundationNetworking's URLSession was seen to hang when
/// several suites used it at once, and a child process per request cannot share such state.
enum Curl {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    static func request(
        _ method: String, _ url: String, headers: [String: String] = [:], body: Data? = nil, user: String? = nil
    ) async throws -> Reply {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("depot-curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var arguments = [
            "-s", "-S", "-X", method, "-D", directory.appendingPathComponent("headers").path, "-o",
            directory.appendingPathComponent("body").path,
            "--max-time", "30",
        ]
        if let user { arguments += ["-u", user] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let body {
            let file = directory.appendingPathComponent("request")
            try body.write(to: file)
            arguments += ["--data-binary", "@\(file.path)"]
        }
        arguments.append(url)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
        guard process.terminationStatus == 0 else {
            throw TestEnvironment.Unreachable(
                description: "curl \(method) \(url) failed with status \(process.terminationStatus)")
        }
        let headerText = (try? String(contentsOf: directory.appendingPathComponent("headers"), encoding: .utf8)) ?? ""
        // The last response's head (after any 100 Continue).
        let head = headerText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }.last ?? ""
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let data = (try? Data(contentsOf: directory.appendingPathComponent("body"))) ?? Data()
        return Reply(status: status, headers: fields, body: data)
    }
}
