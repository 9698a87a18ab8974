import Foundation
import TestSupport
import Testing
import Spawn

/// polkit on the real system bus with our policy and rules, and real users: root and alice
/// (vmms-admins) may do everything, bob (no groups) nothing, carol (sudo) only after
/// confirming her password — without the interactive flag she is told so.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct AuthorizationTests {
    static let host = "/org/example/VMMS1/Host"
    static let vmInterface = "org.example.VMMS1.VM"
    static let notAuthorized = "org.example.VMMS1.Error.NotAuthorized"
    static let interactive = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

    /// Every method and property access, with arguments that pass validation so that only
    /// authorization can refuse them.
    typealias Call = (path: String, method: String, args: [String])

    static func everyCall(vm: String) -> [Call] {
        var calls: [Call] = [
            (host, "org.example.VMMS1.Host.CreateVM", [Names.unique("denied"), "{'Generation': <uint32 1>}"]),
            (host, "org.example.VMMS1.Host.LookupVM", ["anything"]),
            (host, "org.freedesktop.DBus.Properties.Get", ["org.example.VMMS1.Host", "Hostname"]),
            (host, "org.freedesktop.DBus.Properties.GetAll", ["org.example.VMMS1.Host"]),
            (host, "org.freedesktop.DBus.Properties.Set", ["org.example.VMMS1.Host", "VirtualMachinePath", "<'/tmp'>"]),
            ("/org/example/VMMS1", "org.freedesktop.DBus.ObjectManager.GetManagedObjects", []),
            (vm, "org.freedesktop.DBus.Properties.Get", [vmInterface, "State"]),
            (vm, "org.freedesktop.DBus.Properties.GetAll", [vmInterface]),
            (vm, "org.freedesktop.DBus.Properties.Set", [vmInterface, "Notes", "<'x'>"]),
            (vm, "org.freedesktop.DBus.Properties.Set", [vmInterface, "Autostart", "<true>"]),
        ]
        for method in ["Start", "TurnOff", "Save", "Pause", "Resume", "Reset", "Reboot"] {
            calls.append((vm, "\(vmInterface).\(method)", []))
        }
        calls.append((vm, "\(vmInterface).Shutdown", ["{}"]))
        calls.append((vm, "\(vmInterface).Rename", [Names.unique("renamed")]))
        calls.append((vm, "\(vmInterface).SetProcessor", ["1", "{'RelativeWeight': <uint32 50>}"]))
        calls.append((vm, "\(vmInterface).SetMemory", ["134217728", "{}"]))
        calls.append((vm, "\(vmInterface).SetSecureBoot", ["false"]))
        calls.append((vm, "\(vmInterface).AddHardDisk", ["{'SizeBytes': <uint64 16777216>}"]))
        calls.append((vm, "\(vmInterface).RemoveHardDisk", ["/etc/shadow", "{'DeleteFile': <true>}"]))
        // The later kinds: jobs, checkpoints, switches, SANs, health.
        calls.append((vm, "\(vmInterface).Export", ["/var/lib/vmms-denied-export", "{}"]))
        calls.append((vm, "\(vmInterface).Move", ["/var/lib/vmms-denied-move", "{}"]))
        calls.append((vm, "\(vmInterface).Checkpoint", [Names.unique("denied")]))
        calls.append((host, "org.example.VMMS1.Host.ImportVM", ["/var/lib/vmms-denied-import", "{}"]))
        calls.append((host, "org.example.VMMS1.Host.CreateSwitch", [Names.unique("denied"), "Private", "{}"]))
        calls.append((host, "org.example.VMMS1.Host.CreateSAN", [Names.unique("denied"), "iSCSI",
                                                                "{'Portal': <'127.0.0.1'>, 'Target': <'iqn.2026-12.test.vmms:denied'>}"]))
        calls.append((host, "org.example.VMMS1.Host.CheckHealth", []))
        calls.append((vm, "\(vmInterface).Delete", ["{}"]))
        return calls
    }

    @Test func bobIsRefusedEveryCallAndCarolIsAskedToAuthenticate() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let root = GDBus(user: "root")
            let name = Names.unique("target")
            let vm = try await root.createVM(name)
            for call in Self.everyCall(vm: vm) {
                let bob = try await GDBus(user: "bob").call(call.path, call.method, call.args)
                #expect(bob.errorName == Self.notAuthorized, "bob \(call.method): \(bob)")
                let carol = try await GDBus(user: "carol").call(call.path, call.method, call.args)
                #expect(carol.errorName == Self.interactive, "carol \(call.method): \(carol)")
            }
            // Nothing bob or carol tried changed anything.
            #expect(try await root.get(vm, Self.vmInterface, "State").output.contains("'Off'"))
            #expect(try await virsh(["domstate", name]).stdout.contains("shut off"))
            _ = try await root.call(vm, "\(Self.vmInterface).Delete", ["{}"])
        }
    }

    @Test(arguments: ["root", "alice"])
    func administratorsMayDoEverything(user: String) async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = GDBus(user: user)
            let name = Names.unique(user)
            let vm = try await client.createVM(name)
            #expect(try await client.call(Self.host, "org.example.VMMS1.Host.LookupVM", [name]).output.contains(vm))
            #expect(try await client.get(Self.host, "org.example.VMMS1.Host", "Hypervisor").output.contains("'qemu'"))
            #expect(try await client.call("/org/example/VMMS1", "org.freedesktop.DBus.ObjectManager.GetManagedObjects").output.contains(vm))
            let steps: [(String, [String])] = [
                ("Start", []), ("Pause", []), ("Resume", []), ("Reset", []), ("Reboot", []), ("Save", []), ("Start", []),
                ("Shutdown", ["{'Force': <true>, 'TimeoutSeconds': <uint32 1>}"]), ("Start", []), ("TurnOff", []),
                ("Rename", [name + "-r"]),
                ("SetProcessor", ["2", "{'RelativeWeight': <uint32 50>, 'Maximum': <uint32 80>}"]),
                ("SetMemory", ["134217728", "{'DynamicMemory': <true>}"]),
                ("AddHardDisk", ["{'SizeBytes': <uint64 16777216>}"]),
            ]
            for (method, args) in steps {
                let outcome = try await client.call(vm, "\(Self.vmInterface).\(method)", args)
                #expect(outcome.ok, "\(user) \(method): \(outcome)")
            }
            for (property, value) in [("Notes", "<'set by \(user)'>"), ("Autostart", "<true>")] {
                let outcome = try await client.call(vm, "org.freedesktop.DBus.Properties.Set", [Self.vmInterface, property, value])
                #expect(outcome.ok, "\(user) Set \(property): \(outcome)")
            }
            #expect(try await virsh(["dominfo", name + "-r"]).stdout.contains("Autostart:      enable"))
            let target = NSTemporaryDirectory()
            #expect(try await client.call(Self.host, "org.freedesktop.DBus.Properties.Set",
                                          ["org.example.VMMS1.Host", "VirtualMachinePath", "<'\(target)'>"]).ok)
            let settings = try await virsh(["dumpxml", "--inactive", name + "-r"]).stdout
            #expect(settings.contains("<vcpu placement='static'>2</vcpu>") && settings.contains("<quota>80000</quota>")
                    && settings.contains("<currentMemory unit='KiB'>131072</currentMemory>") && settings.contains("\(name)-r-2.qcow2"),
                    "\(user)'s settings did not reach libvirt: \(settings)")
            let delete = try await client.call(vm, "\(Self.vmInterface).Delete", ["{'DeleteDisks': <true>}"])
            #expect(delete.ok, "\(user) Delete: \(delete)")
            #expect(try await virsh(["dominfo", name + "-r"]).status != 0)
        }
    }

    @Test func perVMRuleLetsBobPowerOneVMOnly() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let root = GDBus(user: "root")
            let mine = Names.unique("bobs"), other = Names.unique("other")
            let bobsVM = try await root.createVM(mine)
            let otherVM = try await root.createVM(other)
            let rules = "/etc/polkit-1/rules.d/60-vmms-integration-test.rules"
            try """
            polkit.addRule(function(action, subject) {
                if ((action.id == "org.example.vmms1.vm.power" || action.id == "org.example.vmms1.read") &&
                    action.lookup("vm.name") == "\(mine)" && subject.user == "bob")
                    return polkit.Result.YES;
            });
            """.write(toFile: rules, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: rules) }
            let bob = GDBus(user: "bob")
            // polkitd notices new rules files by itself; give it a moment.
            var started = try await bob.call(bobsVM, "\(Self.vmInterface).Start")
            for _ in 0..<50 where !started.ok {
                try await Task.sleep(for: .milliseconds(100))
                started = try await bob.call(bobsVM, "\(Self.vmInterface).Start")
            }
            #expect(started.ok, "bob Start on his VM: \(started)")
            #expect(try await bob.get(bobsVM, Self.vmInterface, "State").output.contains("'Running'"))
            #expect(try await bob.call(bobsVM, "\(Self.vmInterface).TurnOff").ok)
            // He finds his VM by name, sees it (and only it) in the inventory, learns nothing
            // about the others, not even whether a name exists.
            let found = try await bob.call("/org/example/VMMS1/Host", "org.example.VMMS1.Host.LookupVM", [mine])
            #expect(found.ok && found.output.contains(bobsVM), "\(found)")
            #expect(try await bob.call("/org/example/VMMS1/Host", "org.example.VMMS1.Host.LookupVM", [other]).errorName == Self.notAuthorized)
            #expect(try await bob.call("/org/example/VMMS1/Host", "org.example.VMMS1.Host.LookupVM", ["no-such-vm"]).errorName == Self.notAuthorized)
            let inventory = try await bob.call("/org/example/VMMS1", "org.freedesktop.DBus.ObjectManager.GetManagedObjects")
            #expect(inventory.ok && inventory.output.contains(bobsVM) && !inventory.output.contains(otherVM)
                    && !inventory.output.contains("/org/example/VMMS1/Host"), "\(inventory.output.prefix(400))")
            #expect(try await bob.call(otherVM, "\(Self.vmInterface).Start").errorName == Self.notAuthorized)
            #expect(try await bob.get(otherVM, Self.vmInterface, "State").errorName == Self.notAuthorized)
            #expect(try await bob.call(bobsVM, "\(Self.vmInterface).Delete", ["{}"]).errorName == Self.notAuthorized)
            #expect(try await bob.call(bobsVM, "org.freedesktop.DBus.Properties.Set", [Self.vmInterface, "Notes", "<'x'>"]).errorName == Self.notAuthorized)
            _ = try await root.call(bobsVM, "\(Self.vmInterface).Delete", ["{}"])
            _ = try await root.call(otherVM, "\(Self.vmInterface).Delete", ["{}"])
        }
    }

    @Test func bobReceivesNoSignalsWhileAliceDoes() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let root = GDBus(user: "root")
            let vm = try await root.createVM(Names.unique("signals"))
            _ = try await root.call(vm, "\(Self.vmInterface).Start")
            let directory = NSTemporaryDirectory() + "vmms-monitor-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var monitors: [String: ChildProcess] = [:]
            for user in ["alice", "bob"] {
                monitors[user] = try ChildProcess("/usr/sbin/runuser", ["-u", user, "--", "/usr/bin/gdbus", "monitor", "--system",
                                                                        "--dest", "org.example.VMMS1"],
                                                  stdoutPath: "\(directory)/\(user).out", stderrPath: "\(directory)/\(user).err")
            }
            try await Task.sleep(for: .milliseconds(700))
            for method in ["Pause", "Resume", "Pause", "Resume"] { _ = try await root.call(vm, "\(Self.vmInterface).\(method)") }
            try await Task.sleep(for: .milliseconds(500))
            for monitor in monitors.values { monitor.signal(SIGTERM); monitor.wait() }
            let alice = (try? String(contentsOfFile: "\(directory)/alice.out", encoding: .utf8)) ?? ""
            let bob = (try? String(contentsOfFile: "\(directory)/bob.out", encoding: .utf8)) ?? ""
            #expect(alice.contains("PropertiesChanged"), "alice saw: \(alice)")
            #expect(!bob.contains("PropertiesChanged"), "bob saw: \(bob)")
            #expect(bob.contains("owned by"), "bob's monitor did not run: \(bob)")
            _ = try await root.call(vm, "\(Self.vmInterface).Delete", ["{'Force': <true>}"])
        }
    }
}
