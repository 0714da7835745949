import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// CPU time of the processes that serve an order, read from /proc: every process of one `depot`
/// executable, every process whose command is `postgres`, and every `beam.smp` (RabbitMQ) with
/// its descendants. Take a sample before and after a window and subtract.
struct ProcessCPU: Sendable {
    enum Group: String, CaseIterable, Sendable {
        case depot, postgres, rabbitmq
    }

    struct Sample: Sendable {
        var seconds: [Group: Double] = [:]
        var total: Double { seconds.values.reduce(0, +) }

        static func - (after: Sample, before: Sample) -> Sample {
            var difference = Sample()
            for group in Group.allCases {
                difference.seconds[group] = (after.seconds[group] ?? 0) - (before.seconds[group] ?? 0)
            }
            return difference
        }

        /// "depot 2.10, postgres 1.30, rabbitmq 0.90": each group's milliseconds divided by
        /// `count` (orders, or seconds for a rate).
        func millisecondsByGroup(per count: Double) -> String {
            Group.allCases.map {
                "\($0.rawValue) \(String(format: "%.2f", 1000 * (seconds[$0] ?? 0) / max(count, 1)))"
            }.joined(separator: ", ")
        }
    }

    /// The depot executable's resolved path, as /proc/<pid>/exe names it.
    let depotExecutable: String
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init(depotExecutable: String) {
        self.depotExecutable =
            realpath(depotExecutable, nil).map { resolved in
                defer { free(resolved) }
                return String(cString: resolved)
            } ?? depotExecutable
    }

    func sample() -> Sample {
        struct Stat {
            var command: String
            var parent: Int32
            var ticks: Double
        }
        var stats: [Int32: Stat] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let text = Self.readProcFile("/proc/\(pid)/stat"),
                let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
            else { continue }
            // After the command (which may hold spaces and parentheses): state, ppid, … utime is
            // field 14, stime 15, cutime 16, cstime 17 of stat(5), so indices 11…14 here.
            let fields = text[text.index(after: close)...].split(separator: " ")
            guard fields.count > 14, let parent = Int32(fields[1]) else { continue }
            // cutime and cstime hold the children a process has reaped: a backend that exits
            // inside the window is counted through the postmaster instead of vanishing.
            let ticks = fields[11...14].reduce(0.0) { $0 + (Double($1) ?? 0) }
            stats[pid] = Stat(
                command: String(text[text.index(after: open)..<close]), parent: parent, ticks: ticks)
        }

        var groups: [Int32: Group] = [:]
        for (pid, stat) in stats {
            if stat.command == "postgres" {
                groups[pid] = .postgres
            } else if stat.command == "beam.smp" {
                groups[pid] = .rabbitmq
            } else if Self.executable(of: pid) == depotExecutable {
                // By executable, not by name: another checkout's depot may run beside this one.
                groups[pid] = .depot
            }
        }
        // RabbitMQ's helpers (erl_child_setup, inet_gethost) are children of beam.smp.
        var changed = true
        while changed {
            changed = false
            for (pid, stat) in stats where groups[pid] == nil && groups[stat.parent] == .rabbitmq {
                groups[pid] = .rabbitmq
                changed = true
            }
        }

        var sample = Sample()
        for group in Group.allCases { sample.seconds[group] = 0 }
        for (pid, group) in groups {
            sample.seconds[group, default: 0] += stats[pid]!.ticks / ticksPerSecond
        }
        return sample
    }

    /// procfs files report size 0, so read them until end of file rather than by their size.
    private static func readProcFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    private static func executable(of pid: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension ProcessCPU {
    /// For the release `depot` beside this binary, the one the benchmarks start.
    static var besideBench: ProcessCPU {
        ProcessCPU(
            depotExecutable: URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("depot").path)
    }
}
