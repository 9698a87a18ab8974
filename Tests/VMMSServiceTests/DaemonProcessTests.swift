import Foundation
import Glibc
import TestSupport
import Testing
import Spawn

/// The `vmmsd` binary itself: it serves, and leaves cleanly on SIGTERM and SIGINT.
@Suite(.serialized) struct DaemonProcessTests {
    static var vmmsd: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
        return url.appendingPathComponent("vmmsd").path
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func daemonServesAndExitsCleanlyOnSignal(signal: Int32) async throws {
        let bus = try PrivateBus()
        let state = NSTemporaryDirectory() + "vmmsd-\(UUID().uuidString)"
        let log = state + ".log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let daemon = try ChildProcess(Self.vmmsd, ["--address", bus.address, "--connect", "test:///default", "--state-dir", state],
                                      stderrPath: log)
        var answered = false
        for _ in 0..<100 {
            let ping = try await runCommand("/usr/bin/busctl", ["--address=\(bus.address)", "call", "org.example.VMMS1",
                                                                "/org/example/VMMS1/Host", "org.freedesktop.DBus.Peer", "Ping"])
            if ping.status == 0 { answered = true; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(answered, "vmmsd did not come up: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        daemon.signal(signal)
        #expect(daemon.wait() == 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("leaving the bus"))
    }

    @Test func badConfigurationFileStopsTheDaemonWithAClearMessage() async throws {
        let config = NSTemporaryDirectory() + "vmmsd-\(UUID().uuidString).conf"
        try "accelerator = warp\n".write(toFile: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }
        let result = try await runCommand(Self.vmmsd, ["--session", "--config", config])
        #expect(result.status == 78)
        #expect(result.stderr.contains("accelerator must be auto, kvm or tcg"))
    }
}
