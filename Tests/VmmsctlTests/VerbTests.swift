import DBus
import Foundation
import Testing
import TestSupport

/// Every verb that changes something, checked against what the service then publishes.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct VerbTests {
    @Test func createPassesEveryCreateVMSetting() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let full = Names.unique("full"), plain = Names.unique("uefi"), secure = Names.unique("sb"), media = Names.unique("media")
            try await cleaningUp([full, plain, secure, media]) {
                let created = try await Ctl.ok(["create", full, "--generation", "1", "--cpus", "2", "--memory", "96M",
                                                "--dynamic-memory", "--min-memory", "64M", "--max-memory", "128M",
                                                "--new-disk", "16M", "--notes", "made by vmmsctl", "--autostart", "--json"])
                let printed = try #require(try parseJSON(created) as? [String: Any])
                #expect(printed["Name"] as? String == full)
                let vm = try await dbus.vm(named: full)
                #expect(vm["Generation"] == .uint32(1))
                #expect(vm["ProcessorCount"] == .uint32(2))
                #expect(vm["MemoryStartupBytes"] == .uint64(96 << 20))
                #expect(vm["DynamicMemoryEnabled"] == .boolean(true))
                #expect(vm["MemoryMinimumBytes"] == .uint64(64 << 20))
                #expect(vm["MemoryMaximumBytes"] == .uint64(128 << 20))
                #expect(vm["Notes"] == .string("made by vmmsctl"))
                #expect(vm["Autostart"] == .boolean(true))
                let disks = try #require(vm["HardDisks"]?.arrayElements)
                #expect(disks.count == 1)
                guard case .structure(let disk)? = disks.first, let diskPath = disk.first?.string else {
                    Issue.record("HardDisks: \(disks)")
                    return
                }
                #expect(disk.last == .uint64(16 << 20))
                #expect(FileManager.default.fileExists(atPath: diskPath))

                // The table row `create` prints without --json.
                let row = parseTable(try await Ctl.ok(["create", plain, "--generation", "2", "--no-secure-boot", "--memory", "64M"]))
                #expect(row.count == 1 && row.first?["Name"] == plain && row.first?["State"] == "Off", "\(row)")
                #expect(try await dbus.vm(named: plain)["SecureBoot"] == .boolean(false))
                #expect(try await dbus.vm(named: plain)["Generation"] == .uint32(2))
                if try await dbus.host()["SecureBootAvailable"] == .boolean(true) {
                    try await Ctl.ok(["create", secure, "--generation", "2", "--secure-boot", "--memory", "64M"])
                    #expect(try await dbus.vm(named: secure)["SecureBoot"] == .boolean(true))
                }

                // An existing image and an ISO, and --start.
                let directory = try await dbus.diskDirectory()
                let image = directory + "/\(media)-existing.qcow2", iso = directory + "/\(media).iso"
                #expect(try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image, "16M"]).status == 0)
                _ = FileManager.default.createFile(atPath: iso, contents: Data(count: 2048))
                defer {
                    try? FileManager.default.removeItem(atPath: image)
                    try? FileManager.default.removeItem(atPath: iso)
                }
                try await Ctl.ok(["create", media, "--disk", image, "--iso", iso, "--start"] + smallVM)
                let started = try await dbus.vm(named: media)
                #expect(started["State"] == .string("Running"))
                // (Capacity is not checked: the service reports 0 for images outside its pool.)
                #expect(started["HardDisks"]?.arrayElements?.contains {
                    guard case .structure(let fields) = $0 else { return false }
                    return fields.prefix(2) == [.string(image), .string("qcow2")]
                } == true, "\(String(describing: started["HardDisks"]))")
                #expect(try await virsh(["domblklist", media]).stdout.contains(iso), "the ISO is not attached")

                // delete --delete-disks removes the image CreateVM made.
                try await Ctl.ok(["delete", "--yes", "--delete-disks", full])
                #expect(!(try await dbus.exists(full)))
                #expect(!FileManager.default.fileExists(atPath: diskPath), "delete --delete-disks left \(diskPath)")
            }
        }
    }

    @Test(.timeLimit(.minutes(15)))
    func powerVerbsWalkTheLifecycleOfSeveralVMsAtOnce() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let a = Names.unique("a"), b = Names.unique("b")
            try await cleaningUp([a, b]) {
                try await Ctl.ok(["create", a] + smallVM)
                try await Ctl.ok(["create", b] + smallVM)
                func states() async throws -> [String?] {
                    let first = try await dbus.vm(named: a), second = try await dbus.vm(named: b)
                    return [first["State"]?.string, second["State"]?.string]
                }

                for (verb, state) in [("start", "Running"), ("pause", "Paused"), ("resume", "Running"), ("suspend", "Paused"),
                                      ("resume", "Running"), ("reset", "Running"), ("restart", "Running"), ("save", "Saved"),
                                      ("start", "Running")] {
                    try await Ctl.ok([verb, a, b])
                    #expect(try await states() == [state, state], "after \(verb)")
                }
                #expect(try await virsh(["domstate", a]).stdout.hasPrefix("running"))

                // A guest without an OS ignores the power button: the timeout is exit 1 with a hint.
                let timedOut = try await Ctl.run(["stop", "--timeout", "1", a])
                Ctl.expect(timedOut, 1, "stop without --force")
                #expect(timedOut.stderr.contains("org.example.VMMS1.Error.Timeout") && timedOut.stderr.contains("--force"), "\(timedOut.stderr)")
                #expect(try await dbus.vm(named: a)["State"] == .string("Running"))
                try await Ctl.ok(["stop", "--timeout", "1", "--force", a])
                #expect(try await dbus.vm(named: a)["State"] == .string("Off"))

                try await Ctl.ok(["stop", "--save", b])
                #expect(try await dbus.vm(named: b)["State"] == .string("Saved"))
                try await Ctl.ok(["start", b])
                try await Ctl.ok(["stop", "--turn-off", b])
                #expect(try await dbus.vm(named: b)["State"] == .string("Off"))
                #expect(try await virsh(["domstate", b]).stdout.hasPrefix("shut off"))

                // Wrong state: the service's InvalidState message and exit 1.
                let paused = try await Ctl.run(["pause", a])
                Ctl.expect(paused, 1, "pause of an Off VM")
                #expect(paused.stderr.contains("InvalidState") && paused.stderr.contains("Off"), "\(paused.stderr)")

                // One good VM and one missing: the good one starts, the missing one is exit 4.
                let mixed = try await Ctl.run(["start", a, "no-such-vm"])
                Ctl.expect(mixed, 4, "start of a VM and a missing one")
                #expect(mixed.stderr.contains("no-such-vm"))
                #expect(try await dbus.vm(named: a)["State"] == .string("Running"))
                try await Ctl.ok(["stop", "--turn-off", a])
            }
        }
    }

    @Test func configurationVerbsChangeWhatTheServicePublishes() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let first = Names.unique("cfg"), renamed = first + "-renamed", uefi = Names.unique("fw")
            try await cleaningUp([first, renamed, uefi]) {
                try await Ctl.ok(["create", first] + smallVM)
                let path = try await dbus.lookup(first)
                try await Ctl.ok(["rename", first, renamed])
                #expect(try await dbus.properties(path)["Name"] == .string(renamed))

                try await Ctl.ok(["set-processor", renamed, "--count", "2", "--reserve", "10", "--maximum", "50", "--weight", "200"])
                var vm = try await dbus.properties(path)
                #expect([vm["ProcessorCount"], vm["ProcessorReserve"], vm["ProcessorMaximum"], vm["ProcessorRelativeWeight"]]
                        == [.uint32(2), .uint32(10), .uint32(50), .uint32(200)])
                // Left out: kept (SetProcessor itself always takes the count).
                try await Ctl.ok(["set-processor", renamed, "--weight", "100"])
                vm = try await dbus.properties(path)
                #expect(vm["ProcessorCount"] == .uint32(2) && vm["ProcessorRelativeWeight"] == .uint32(100) && vm["ProcessorMaximum"] == .uint32(50))

                try await Ctl.ok(["set-memory", renamed, "--memory", "128M"])
                #expect(try await dbus.properties(path)["MemoryStartupBytes"] == .uint64(128 << 20))
                try await Ctl.ok(["set-memory", renamed, "--dynamic-memory", "--min-memory", "64M", "--max-memory", "256M"])
                vm = try await dbus.properties(path)
                #expect([vm["DynamicMemoryEnabled"], vm["MemoryStartupBytes"], vm["MemoryMinimumBytes"], vm["MemoryMaximumBytes"]]
                        == [.boolean(true), .uint64(128 << 20), .uint64(64 << 20), .uint64(256 << 20)])
                try await Ctl.ok(["set-memory", renamed, "--no-dynamic-memory", "--memory", "64M"])
                #expect(try await dbus.properties(path)["DynamicMemoryEnabled"] == .boolean(false))

                try await Ctl.ok(["set", renamed, "--notes", "owner: ops", "--autostart", "on"])
                vm = try await dbus.properties(path)
                #expect(vm["Notes"] == .string("owner: ops") && vm["Autostart"] == .boolean(true))
                try await Ctl.ok(["set", renamed, "--autostart", "off", "--notes", ""])
                vm = try await dbus.properties(path)
                #expect(vm["Notes"] == .string("") && vm["Autostart"] == .boolean(false))

                // Disks: a new one (its path printed), listed, removed with its file.
                let added = try await Ctl.ok(["disk", "add", renamed, "--size", "8M"]).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(added.hasPrefix("/") && FileManager.default.fileExists(atPath: added), "disk add printed \(added)")
                let listed = try #require(try parseJSON(try await Ctl.ok(["disk", "list", renamed, "--json"])) as? [[String: Any]])
                #expect(listed.count == 1 && listed.first?["Path"] as? String == added
                        && (listed.first?["CapacityBytes"] as? NSNumber)?.uint64Value == 8 << 20, "\(listed)")
                #expect(parseTable(try await Ctl.ok(["disk", "list", renamed])).first?["Path"] == added)
                try await Ctl.ok(["disk", "remove", renamed, added, "--delete-file"])
                #expect(try await dbus.properties(path)["HardDisks"]?.arrayElements?.isEmpty == true)
                #expect(!FileManager.default.fileExists(atPath: added), "disk remove --delete-file left \(added)")

                // An existing image by --path.
                let image = try await dbus.diskDirectory() + "/\(first)-attach.qcow2"
                #expect(try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image, "8M"]).status == 0)
                defer { try? FileManager.default.removeItem(atPath: image) }
                #expect(try await Ctl.ok(["disk", "add", renamed, "--path", image]) == image + "\n")
                try await Ctl.ok(["disk", "remove", renamed, image])
                #expect(FileManager.default.fileExists(atPath: image), "disk remove without --delete-file deleted the image")

                // Secure Boot: generation 2 only.
                let refused = try await Ctl.run(["set-firmware", renamed, "--secure-boot", "on"])
                Ctl.expect(refused, 1, "Secure Boot on generation 1")
                #expect(refused.stderr.contains("NotSupported"), "\(refused.stderr)")
                try await Ctl.ok(["create", uefi, "--generation", "2", "--memory", "64M"])
                try await Ctl.ok(["set-firmware", uefi, "--secure-boot", "off"])
                #expect(try await dbus.vm(named: uefi)["SecureBoot"] == .boolean(false))
                if try await dbus.host()["SecureBootAvailable"] == .boolean(true) {
                    try await Ctl.ok(["set-firmware", uefi, "--secure-boot", "on"])
                    #expect(try await dbus.vm(named: uefi)["SecureBoot"] == .boolean(true))
                }
            }
        }
    }

    @Test func deleteAsksOnATerminalAndNotInAScript() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let kept = Names.unique("keep"), running = Names.unique("busy"), scripted = Names.unique("script")
            try await cleaningUp([kept, running, scripted]) {
                try await Ctl.ok(["create", kept] + smallVM)
                let no = try await Ctl.onTerminal(["delete", kept], prompt: "[y/N]", reply: "n\n")
                Ctl.expect(no, 0, "delete answered no")
                #expect(no.stdout.contains("Delete the virtual machine \(kept)?"), "\(no.stdout.debugDescription)")
                #expect(try await dbus.exists(kept), "answering no deleted the VM")
                let yes = try await Ctl.onTerminal(["delete", kept], prompt: "[y/N]", reply: "y\n")
                Ctl.expect(yes, 0, "delete answered yes")
                #expect(!(try await dbus.exists(kept)))

                // Off a terminal nobody can answer: no question.
                try await Ctl.ok(["create", scripted] + smallVM)
                try await Ctl.ok(["delete", scripted])
                #expect(!(try await dbus.exists(scripted)))

                // A running VM needs --force.
                try await Ctl.ok(["create", running, "--start"] + smallVM)
                Ctl.expect(try await Ctl.run(["delete", "--yes", running]), 1, "delete of a running VM")
                #expect(try await dbus.exists(running))
                try await Ctl.ok(["delete", "--yes", "--force", running])
                #expect(!(try await dbus.exists(running)))
            }
        }
    }

    @Test func hostGetAndSetMatchTheHostObject() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let host = try await dbus.host()
            let json = try #require(try parseJSON(try await Ctl.ok(["host", "get", "--json"])) as? [String: Any])
            for (property, value) in host {
                #expect(jsonMatches(json[property], value), "\(property): \(String(describing: json[property])) vs \(value)")
            }
            #expect(json["Path"] as? String == "/org/example/VMMS1/Host")
            let list = try await Ctl.ok(["host", "get"])
            #expect(list.contains("Hypervisor") && list.contains(host["Hostname"]?.string ?? "?"))
            #expect(try await Ctl.ok(["host", "get", "LogicalProcessorCount"]) == "\(host["LogicalProcessorCount"]?.uint32 ?? 0)\n")
            Ctl.expect(try await Ctl.run(["host", "get", "NoSuchProperty"]), 2, "an unknown host property")

            // The service's state directory is this test's own, so nothing outlives it.
            let machines = NSTemporaryDirectory() + "vmmsctl-vms-\(UUID().uuidString)"
            let disks = NSTemporaryDirectory() + "vmmsctl-disks-\(UUID().uuidString)"
            for directory in [machines, disks] { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            defer { for directory in [machines, disks] { try? FileManager.default.removeItem(atPath: directory) } }
            try await Ctl.ok(["host", "set", "--virtual-machine-path", machines, "--vhd-path", disks])
            let after = try await dbus.host()
            #expect(after["VirtualMachinePath"] == .string(machines) && after["VirtualHardDiskPath"] == .string(disks))
            #expect(try await Ctl.ok(["host", "get", "VirtualHardDiskPath"]) == disks + "\n")
            let missing = try await Ctl.run(["host", "set", "--vhd-path", "/nonexistent/dir"])
            Ctl.expect(missing, 1, "a path that does not exist")
            #expect(missing.stderr.contains("InvalidArgs") && missing.stderr.contains("not an existing directory"), "\(missing.stderr)")
        }
    }
}
