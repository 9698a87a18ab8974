import DBus
import Foundation
import Testing
import TestSupport

/// export / import / job on the real stack: the progress bar on a terminal, --no-wait and
/// job cancel, job list --json against the Job objects, an import of the export.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct JobCommandTests {
    @Test func exportShowsProgressImportMakesASecondVMAndCancelLeavesNoFolder() async throws {
        try await SystemBusNameLock.with {
            // 8 MiB/s: the 32 MiB of data below take about four seconds, so the bar moves.
            let service = try await SystemVMMSD(environment: ["VMMSD_TEST_COPY_BYTES_PER_SECOND": "8388608"])
            defer { service.stop() }
            let name = Names.unique("ctljob"), copy = Names.unique("ctljobcopy")
            let exports = "/var/lib/vmms/machines/ctl-exports-\(UUID().uuidString.prefix(8))"
            let image = "/var/lib/libvirt/images/\(name).qcow2"
            try FileManager.default.createDirectory(atPath: exports, withIntermediateDirectories: true)
            defer {
                try? FileManager.default.removeItem(atPath: exports)
                try? FileManager.default.removeItem(atPath: image)
            }
            try await cleaningUp([name, copy]) {
                // A disk with 32 MiB of data in a 1 GiB image.
                #expect(try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image, "1G"]).status == 0)
                let io = try await runCommand("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 0 32M", image])
                #expect(io.status == 0, "\(io.stderr)")
                try await Ctl.ok(["create", name] + smallVM + ["--disk", image])

                // On a terminal: the bar, up to 100 %.
                let shown = try await Ctl.onTerminal(["export", name, exports], timeout: .seconds(120))
                Ctl.expect(shown, 0, "export on a terminal")
                #expect(shown.stdout.contains("% Exporting \(name)") && shown.stdout.contains("100% Exporting"), "\(shown.stdout.debugDescription)")
                #expect(FileManager.default.fileExists(atPath: "\(exports)/\(name)/Virtual Hard Disks"))

                // job list --json shows the finished export.
                let jobs = try JSONSerialization.jsonObject(with: Data(try await Ctl.ok(["job", "list", "--json"], as: "alice").utf8)) as? [[String: Any]]
                #expect(jobs?.contains { $0["Operation"] as? String == "Export" && $0["State"] as? String == "Completed"
                                         && $0["PercentComplete"] as? Int == 100 } == true, "\(String(describing: jobs))")

                // Import it as a second VM, then a second export cancelled half-way leaves no folder.
                try await Ctl.ok(["import", "\(exports)/\(name)", "--new-id", "--name", copy])
                #expect(try await Ctl.ok(["list", "--json"]).contains("\"\(copy)\""))

                // Move the copy's files on a terminal (Move-VMStorage): the bar, then its disk in the new folder.
                let moved = "\(exports)/moved"
                try FileManager.default.createDirectory(atPath: moved, withIntermediateDirectories: true)
                let moving = try await Ctl.onTerminal(["move", copy, moved], timeout: .seconds(120))
                Ctl.expect(moving, 0, "move on a terminal")
                #expect(moving.stdout.contains("% Moving \(copy)") && moving.stdout.contains("100% Moving"), "\(moving.stdout.debugDescription)")
                let shownCopy = try await Ctl.ok(["show", copy, "--json"])
                #expect(shownCopy.contains(moved), "the copy's files are not in \(moved): \(shownCopy)")
                let again = "\(exports)/again"
                try FileManager.default.createDirectory(atPath: again, withIntermediateDirectories: true)
                let job = try await Ctl.ok(["export", name, again, "--no-wait"]).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(job.hasPrefix("/org/example/VMMS1/Job/"), "\(job)")
                try await Task.sleep(for: .milliseconds(800))
                try await Ctl.ok(["job", "cancel", String(job.split(separator: "/").last ?? "")])
                let waited = try await Ctl.run(["job", "wait", job])
                Ctl.expect(waited, 1, "waiting for a cancelled job")
                #expect(waited.stderr.contains("cancelled"), "\(waited.stderr)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: again).isEmpty, "a cancelled export left files")
                Ctl.expect(try await Ctl.run(["job", "cancel", "999999"]), 4, "cancel of a job that does not exist")
            }
        }
    }
}

/// checkpoint create / list (a tree) / rename / apply / delete on the real stack, and the
/// health finding while checkpoints exist.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct CheckpointCommandTests {
    @Test func checkpointsAreTakenListedAsATreeRenamedAppliedAndDeleted() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let name = Names.unique("ctlck")
            let image = "/var/lib/libvirt/images/\(name).qcow2"
            defer { try? FileManager.default.removeItem(atPath: image) }
            try await cleaningUp([name]) {
                #expect(try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]).status == 0)
                try await Ctl.ok(["create", name] + smallVM + ["--disk", image])
                let first = try await Ctl.ok(["checkpoint", "create", name, "before"], as: "alice")
                #expect(first.contains("/Checkpoint/"), "\(first)")
                try await Ctl.ok(["checkpoint", "create", name, "after"])
                let table = try await Ctl.ok(["checkpoint", "list", name])
                #expect(table.contains("\nbefore") && table.contains("\n  after"), "the child is indented under its parent: \(table)")
                try await Ctl.ok(["checkpoint", "rename", name, "after", "later"])
                let listed = try JSONSerialization.jsonObject(with: Data(try await Ctl.ok(["checkpoint", "list", name, "--json"]).utf8)) as? [[String: Any]]
                #expect(listed?.map { $0["Name"] as? String } == ["before", "later"], "\(String(describing: listed))")
                #expect(listed?.allSatisfy { $0["IncludesMemory"] as? Bool == false } == true)
                let health = try await Ctl.run(["health", "--json"])
                #expect(health.stdout.contains("vmms.checkpoints") && health.stdout.contains(name), "\(health.stdout)")
                try await Ctl.ok(["checkpoint", "apply", name, "before"])
                Ctl.expect(try await Ctl.run(["checkpoint", "apply", name, "nothing"]), 4, "apply of a checkpoint that does not exist")
                try await Ctl.ok(["checkpoint", "delete", name, "before", "--include-children"])
                let empty = try JSONSerialization.jsonObject(with: Data(try await Ctl.ok(["checkpoint", "list", name, "--json"]).utf8)) as? [Any]
                #expect(empty?.isEmpty == true, "\(String(describing: empty))")
            }
        }
    }
}
