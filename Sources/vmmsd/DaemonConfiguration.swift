import Foundation
import VMMSModel

/// `/etc/vmms/vmmsd.conf`: `key = value` lines, `#` comments. Command-line options win.
/// An unknown key or a bad value stops the daemon: a typo in an administrator's file should
/// be loud, not silently ignored.
struct DaemonConfiguration {
    var connect: String?
    var accelerator: Accelerator?
    var stateDirectory: String?
    /// `migration-destinations`: libvirt URIs, separated by commas or spaces (repeatable).
    var migrationDestinations: [String] = []

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    init(contentsOf path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            try self.init(parsing: "", source: path)
            return
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try self.init(parsing: text, source: path)
    }

    init(parsing text: String, source: String) throws {
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { throw Problem(description: "\(source):\(index + 1): expected key = value") }
            switch parts[0] {
            case "connect": connect = parts[1]
            case "state-dir": stateDirectory = parts[1]
            case "migration-destinations":
                migrationDestinations += parts[1].split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
            case "accelerator":
                guard let value = Accelerator(rawValue: parts[1]) else {
                    throw Problem(description: "\(source):\(index + 1): accelerator must be auto, kvm or tcg")
                }
                accelerator = value
            default:
                throw Problem(description: "\(source):\(index + 1): unknown key \(parts[0])")
            }
        }
    }
}
