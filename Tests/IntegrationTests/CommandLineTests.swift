import DepotApp
import Foundation
import Testing

/// The executable as operators meet it, without servers.
@Suite("Command line")
struct CommandLineTests {
    /// Runs the built `depot` with `arguments` and returns its status and output.
    static func depot(_ arguments: [String], environment: [String: String] = [:]) async throws -> (
        status: Int32, output: String
    ) {
        let process = Process()
        process.executableURL = IsolatedDepot.depotBinary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("depot-cli-\(UUID().uuidString).out")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    @Test(
        "every DEPOT_* setting has its flag on every command that connects",
        arguments: ["all", "edge", "orders", "migrate", "status"])
    func everySettingHasAFlag(command: String) async throws {
        let help = try await Self.depot([command, "--help"])
        #expect(help.status == 0)
        for (variable, _) in Settings.defaults {
            let flag = "--" + variable.dropFirst("DEPOT_".count).lowercased().replacingOccurrences(of: "_", with: "-")
            #expect(help.output.contains(flag), "depot \(command) has no \(flag) for \(variable)")
            #expect(help.output.contains(variable), "depot \(command)'s help does not name \(variable)")
        }
    }

    @Test("a bad flag value stops the process with exit 2 and one line naming the setting")
    func badFlag() async throws {
        let result = try await Self.depot(["orders", "--database-pool-size", "none"])
        #expect(result.status == 2)
        #expect(
            result.output.trimmingCharacters(in: .whitespacesAndNewlines)
                == "depot: DEPOT_DATABASE_POOL_SIZE: must be a whole number of connections from 1 to 10000, not 'none'")
    }
}
