import Foundation
import TestSupport
import Testing

/// `make run` as the README promises it, driven on a pseudo-terminal like a person would.
@Suite(.serialized) struct MakeRunTests {
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    @Test(.timeLimit(.minutes(5)))
    func makeRunIsReadyWhenItSaysSoRefusesASecondInstanceAndStopsCleanlyOnCtrlC() async throws {
        let runDirectory = NSTemporaryDirectory() + "vmms-run-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: runDirectory) }
        let script = Self.repository + "/Tests/VMMSServiceTests/Scripts/make-run-on-a-terminal.py"
        // The built vmmsd: inside `swift test` a build would wait for this very SwiftPM's lock.
        let result = try await runCommand("/usr/bin/python3", [script, Self.repository, runDirectory, builtVMMSD])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "READY", "\(result.stdout)\(result.stderr)")
        // The busctl line printed is usable the moment it is printed.
        #expect(lines.contains("INTROSPECT 0"), "\(lines)")
        let second = lines.first { $0.hasPrefix("SECOND ") } ?? ""
        #expect(!second.hasPrefix("SECOND 0") && second.contains("already running"), "\(second)")
        let first = lines.first { $0.hasPrefix("FIRST ") } ?? ""
        #expect(first.hasPrefix("FIRST 0 ") && first.contains("vmms stopped"), "\(first)")
        #expect(!first.contains("Error"), "make reported an error after Ctrl-C: \(first)")
    }
}
