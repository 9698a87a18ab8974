import DBus
import Foundation
import Glibc
import Spawn
import TestSupport
import Testing

/// Virtual SANs on the real stack: a user-space iSCSI target (tgtd) on 127.0.0.1 that the
/// test starts, changes and stops, libvirt's iscsi-direct pool (libiscsi) behind the SAN
/// object, and TCG guests using its LUNs. Traffic stays on loopback.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct SANTests {
    static let san = "org.example.VMMS1.SAN"
    static let vm = "org.example.VMMS1.VM"
    static let props = "org.freedesktop.DBus.Properties"
    static let mib: UInt64 = 1 << 20
    typealias Client = LifecycleTests.Client

    typealias Target = ISCSITarget

    /// `busctl --system call` as `user`: (ok, output).
    static func busctl(_ user: String, _ path: String, _ interface: String, _ method: String, _ signature: String, _ args: [String]) async throws -> (ok: Bool, output: String) {
        let result = try await TestSupport.busctl(as: user, ["--timeout=60", "call", "org.example.VMMS1", path, interface, method, signature] + args)
        return (result.status == 0, (result.stdout + result.stderr).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func createSAN(_ user: String, _ name: String, portal: String, target: String) async throws -> (ok: Bool, output: String) {
        try await busctl(user, "/org/example/VMMS1/Host", "org.example.VMMS1.Host", "CreateSAN", "ssa{sv}",
                         [name, "iSCSI", "2", "Portal", "s", portal, "Target", "s", target])
    }

    static func luns(_ client: Client, _ path: ObjectPath) async throws -> [(String, String, UInt64)] {
        guard case .array(_, let items)? = try await client.call(path, props, "Get", [.string(san), .string("LUNs")]).first?.variant else { return [] }
        return items.compactMap { item in
            guard case .structure(let fields) = item, fields.count == 3, let name = fields[0].string, let source = fields[1].string,
                  let capacity = fields[2].uint64 else { return nil }
            return (name, source, capacity)
        }
    }

    static func hardDisks(_ client: Client, _ path: ObjectPath) async throws -> [String: UInt64] {
        guard case .array(_, let items)? = try await client.call(path, props, "Get", [.string(vm), .string("HardDisks")]).first?.variant else { return [:] }
        var disks: [String: UInt64] = [:]
        for item in items {
            if case .structure(let fields) = item, fields.count == 3, let path = fields[0].string, let capacity = fields[2].uint64 { disks[path] = capacity }
        }
        return disks
    }

    static func active(_ client: Client, _ path: ObjectPath) async throws -> Bool? {
        try await client.call(path, props, "Get", [.string(san), .string("Active")]).first?.variant?.boolean
    }

    static func poolNames() async throws -> [String] {
        try await virsh(["pool-list", "--all", "--name"]).stdout.split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.sorted()
    }

    /// Removes what a test left: VMs and the pool (the target goes with `Target.with`).
    static func cleanUp(vms: [String], pool: String) async {
        for name in vms {
            _ = try? await virsh(["destroy", name])
            _ = try? await virsh(["undefine", name, "--nvram"])
        }
        _ = try? await virsh(["pool-destroy", pool])
        _ = try? await virsh(["pool-undefine", pool])
    }

    /// vmmsctl as alice: san create / list --json / refresh / delete, and `disk add --san --lun`.
    @Test func vmmsctlManagesSANsAndAttachesALUN() async throws {
        try await SystemBusNameLock.with { try await Target.with(luns: [(1, 8)]) { target in
            let name = Names.unique("ctlsan"), vmName = Names.unique("ctlsanvm")
            let ctl = URL(fileURLWithPath: builtVMMSD).deletingLastPathComponent().appendingPathComponent("vmmsctl").path
            func run(_ arguments: [String]) async throws -> CommandResult {
                try await runCommand("/usr/sbin/runuser", ["-u", "alice", "--", ctl] + arguments)
            }
            do {
                let service = try await SystemVMMSD()
                defer { service.stop() }
                let created = try await run(["san", "create", name, "--portal", "127.0.0.1:\(target.port)", "--target", target.iqn])
                #expect(created.status == 0 && created.stdout.contains("/org/example/VMMS1/SAN/"), "\(created.stderr)")
                let listed = try await run(["san", "list", "--json"])
                let sans = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
                let mine = try #require(sans.first { $0["Name"] as? String == name }, "\(listed.stdout)")
                #expect(mine["Active"] as? Bool == true && mine["Target"] as? String == target.iqn)
                let lunList = try #require(mine["LUNs"] as? [[Any]], "\(mine)")
                #expect(lunList.count == 1 && (lunList.first?[2] as? UInt64 ?? (lunList.first?[2] as? Int).map(UInt64.init)) == 8 * Self.mib,
                        "\(lunList)")
                let lun = try #require(lunList.first?[0] as? String)
                let table = try await run(["san", "list"])
                #expect(table.stdout.contains(name) && table.stdout.contains(lun) && table.stdout.contains("8 MiB"), "\(table.stdout)")

                #expect(try await run(["create", vmName, "--generation", "1", "--memory", "64M"]).status == 0)
                let added = try await run(["disk", "add", vmName, "--san", name, "--lun", lun])
                #expect(added.status == 0 && !added.stdout.isEmpty, "\(added.stderr)")
                let inUse = try await run(["san", "delete", name])
                #expect(inUse.status == 1 && inUse.stderr.contains("InvalidState") && inUse.stderr.contains(vmName), "\(inUse.stderr)")
                #expect(try await run(["san", "refresh", name]).status == 0)
                #expect(try await run(["delete", "--yes", vmName]).status == 0)
                let deleted = try await run(["san", "delete", name])
                #expect(deleted.status == 0, "\(deleted.stderr)")
                #expect(try await !Self.poolNames().contains(name))
                #expect(try await run(["san", "refresh", name]).status == 4, "a SAN that is gone is not found")
            } catch {
                await Self.cleanUp(vms: [vmName], pool: name)
                throw error
            }
        } }
    }

    @Test func lunsAttachToOffAndRunningVMsOneVMAtATimeAndTheSANFollowsItsTarget() async throws {
        let name = Names.unique("san")
        let vm1 = Names.unique("sanvm"), vm2 = Names.unique("sanvm")
        try await SystemBusNameLock.with { try await Target.with(luns: [(1, 64), (2, 32)]) { target in
            do {
                let service = try await SystemVMMSD()
                defer { service.stop() }
                let client = Client(bus: try DBusConnection(bus: .system))
                defer { client.bus.close() }
                let portal = "127.0.0.1:\(target.port)"

                // CreateSAN as alice (vmms-admins), with busctl.
                let created = try await Self.createSAN("alice", name, portal: portal, target: target.iqn)
                #expect(created.ok, "\(created.output)")
                // busctl prints `o "/org/example/VMMS1/SAN/it_2dsan_2d…"`: the escaped name.
                let printed = created.output.split(separator: "\"").dropFirst().first.map(String.init) ?? ""
                let path = try #require(ObjectPath(printed), "\(created.output)")
                #expect(printed == "/org/example/VMMS1/SAN/" + name.replacingOccurrences(of: "-", with: "_2d"))
                #expect(try await virsh(["pool-info", name]).stdout.contains("running"))
                let source1 = "iscsi://\(portal)/\(target.iqn)/1", source2 = "iscsi://\(portal)/\(target.iqn)/2"
                let listed = try await Self.luns(client, path)
                #expect(listed.map(\.0) == ["unit:0:0:1", "unit:0:0:2"], "the controller LUN 0 is left out: \(listed)")
                #expect(listed.map(\.1) == [source1, source2])
                #expect(listed.map(\.2) == [64 * Self.mib, 32 * Self.mib], "the backing files' sizes, to the byte")
                let hostSANs = try await TestSupport.busctl(as: "alice", ["get-property", "org.example.VMMS1", "/org/example/VMMS1/Host", "org.example.VMMS1.Host", "SANs"])
                #expect(hostSANs.stdout.contains(path.rawValue))
                #expect(!(try await Self.createSAN("bob", name + "-bob", portal: portal, target: target.iqn)).ok, "bob may not create SANs")

                let settings: [String: DBusValue] = ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 * Self.mib)]
                let p1 = try await client.create(vm1, settings), p2 = try await client.create(vm2, settings)
                func add(_ vmPath: ObjectPath, _ lun: String) async throws -> String? {
                    try await client.call(vmPath, Self.vm, "AddHardDisk", [.vardict(["SAN": .objectPath(path), "LUN": .string(lun)])]).first?.string
                }

                // Off: into the definition, on a virtio-scsi controller.
                #expect(try await add(p1, "unit:0:0:1") == source1)
                let xml = try await virsh(["dumpxml", "--inactive", vm1]).stdout
                #expect(xml.contains("model='virtio-scsi'") && xml.contains("bus='scsi'") && xml.contains("name='\(target.iqn)/1'"), "\(xml)")
                #expect(try await Self.hardDisks(client, p1) == [source1: 64 * Self.mib])

                // Running: hot-plugged, seen by QEMU at once.
                try await client.vm(p1, "Start")
                #expect(try await add(p1, "unit:0:0:2") == source2)
                let blocks = try await virsh(["domblklist", vm1]).stdout
                #expect(blocks.contains("\(target.iqn)/1") && blocks.contains("\(target.iqn)/2"), "\(blocks)")
                #expect(try await Self.hardDisks(client, p1) == [source1: 64 * Self.mib, source2: 32 * Self.mib])

                // What the guest's disk gets written reaches the target's backing file.
                let alias = try await virsh(["dumpxml", vm1]).stdout.components(separatedBy: "name='\(target.iqn)/2'").dropFirst().first?
                    .components(separatedBy: "<alias name='").dropFirst().first?.prefix { $0 != "'" }
                let write = try await virsh(["qemu-monitor-command", "--hmp", vm1, "qemu-io -d \(alias ?? "?") \"write -P 0x5a 0 4096\""])
                #expect(write.status == 0, "\(write.stdout) \(write.stderr)")
                let written = FileManager.default.contents(atPath: target.file(2))?.prefix(4096)
                #expect(written == Data(repeating: 0x5a, count: 4096), "the pattern did not reach \(target.file(2))")

                // One VM per LUN; the SAN stays while in use.
                await expectDBusError(DBusError.Name.invalidArgs, "the same LUN for a second VM") { _ = try await add(p2, "unit:0:0:2") }
                do {
                    _ = try await client.call(path, Self.san, "Delete")
                    Issue.record("Delete of a SAN in use succeeded")
                } catch let error as DBusError {
                    #expect(error.name == "org.example.VMMS1.Error.InvalidState" && error.message.contains(vm1), "\(error)")
                }
                #expect(try await Self.poolNames().contains(name))

                // bob (no rights) may neither refresh nor delete the SAN, nor attach its LUNs.
                let bob = GDBus(user: "bob")   // gdbus prints the error's name
                for method in ["Refresh", "Delete"] {
                    let refused = try await bob.call(path.rawValue, "\(Self.san).\(method)", [])
                    #expect(!refused.ok && refused.errorName?.hasSuffix("NotAuthorized") == true, "bob's \(method): \(refused)")
                }
                let bobAttach = try await bob.call(p2.rawValue, "\(Self.vm).AddHardDisk",
                                                   ["{'SAN': <objectpath '\(path.rawValue)'>, 'LUN': <'unit:0:0:1'>}"])
                #expect(!bobAttach.ok && bobAttach.errorName?.hasSuffix("NotAuthorized") == true, "bob's AddHardDisk of a LUN: \(bobAttach)")
                #expect(try await Self.poolNames().contains(name))

                // Detached from the running VM at once; the LUN's data stays on the target.
                _ = try await client.call(p1, Self.vm, "RemoveHardDisk", [.string(source2), .vardict([:])])
                #expect(!(try await virsh(["domblklist", vm1]).stdout.contains("\(target.iqn)/2")))
                #expect(FileManager.default.contents(atPath: target.file(2))?.prefix(4) == Data(repeating: 0x5a, count: 4))
                await expectDBusError(DBusError.Name.invalidArgs, "deleting a LUN's file") {
                    _ = try await client.call(p1, Self.vm, "RemoveHardDisk", [.string(source1), .vardict(["DeleteFile": .boolean(true)])])
                }
                await expectDBusError(DBusError.Name.invalidArgs, "Shared while the other VM has the LUN unshared") {
                    _ = try await client.call(p2, Self.vm, "AddHardDisk", [.vardict(["SAN": .objectPath(path), "LUN": .string("unit:0:0:1"), "Shared": .boolean(true)])])
                }
                #expect(try await add(p2, "unit:0:0:2") == source2, "free again for the second VM")
                await expectDBusError(DBusError.Name.invalidArgs, "a LUN the SAN does not have") { _ = try await add(p2, "unit:0:0:9") }

                // Refresh finds a LUN added on the target, announced as a change of LUNs.
                let changes = try await client.bus.signals(matching: MatchRule(sender: "org.example.VMMS1", path: path,
                                                                               interface: Self.props, member: "PropertiesChanged"))
                try await target.addLUN(3, mib: 16)
                _ = try await client.call(path, Self.san, "Refresh")
                let announced = await firstMatch(changes) { signal in
                    guard case .array(_, let items)? = signal.body.dropFirst().first?.stringKeyedDictionary?["LUNs"] else { return false }
                    return items.count == 3
                }
                #expect(announced != nil, "no PropertiesChanged of LUNs with the new LUN")
                #expect(try await Self.luns(client, path).last?.2 == 16 * Self.mib)

                // The target goes away: a start with its LUN fails naming it, the SAN turns inactive.
                try await client.vm(p1, "TurnOff")
                await target.stop()
                do {
                    try await client.vm(p1, "Start")
                    Issue.record("Start with the LUN of a stopped target succeeded")
                } catch let error as DBusError {
                    #expect(error.message.contains(target.iqn) && error.message.contains(portal) && error.message.contains(name), "\(error.message)")
                }
                #expect(try await Self.active(client, path) == false)
                #expect(try await Self.luns(client, path).isEmpty)
                await expectDBusError("org.example.VMMS1.Error.Failed", "Refresh while the target is down") {
                    _ = try await client.call(path, Self.san, "Refresh")
                }
                #expect(try await Self.active(client, path) == false)

                // Back: Refresh makes it active with its LUNs again, and the VM starts.
                try await target.start()
                _ = try await client.call(path, Self.san, "Refresh")
                #expect(try await Self.active(client, path) == true)
                #expect(try await Self.luns(client, path).count == 3)
                try await client.vm(p1, "Start")
                try await client.vm(p1, "TurnOff")

                // Unused again: Delete removes the pool and nothing on the target.
                _ = try await client.call(p1, Self.vm, "RemoveHardDisk", [.string(source1), .vardict([:])])
                _ = try await client.call(p2, Self.vm, "RemoveHardDisk", [.string(source2), .vardict([:])])
                _ = try await client.call(path, Self.san, "Delete")
                #expect(!(try await Self.poolNames().contains(name)))
                #expect(FileManager.default.fileExists(atPath: target.file(1)) && FileManager.default.fileExists(atPath: target.file(2)))
                await expectDBusError("org.example.VMMS1.Error.NotFound", "AddHardDisk from a deleted SAN") { _ = try await add(p2, "unit:0:0:1") }
                try await client.vm(p1, "Delete", [.vardict([:])])
                try await client.vm(p2, "Delete", [.vardict([:])])
            } catch {
                await Self.cleanUp(vms: [vm1, vm2], pool: name)
                throw error
            }
            await Self.cleanUp(vms: [vm1, vm2], pool: name)
        } }
    }

    @Test func badPortalsTargetsAndUnreachableTargetsLeaveNoPoolAndVirshPoolsAreSANs() async throws {
        try await SystemBusNameLock.with { try await Target.with(luns: [(1, 8)]) { target in
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let before = try await Self.poolNames()
            let closed = try freeLoopbackPort()
            let cases: [(String, String, String, String)] = [
                ("bad portal", "127.0.0.1:99999", target.iqn, "InvalidArgs"),
                ("bad portal", "not a host", target.iqn, "InvalidArgs"),
                ("bad IQN", "127.0.0.1:\(target.port)", "iqn.bad", "InvalidArgs"),
                ("closed port", "127.0.0.1:\(closed)", target.iqn, "Failed"),
                ("unknown target", "127.0.0.1:\(target.port)", target.iqn + "-nosuch", "Failed"),
            ]
            // gdbus, which prints the error's name.
            let alice = GDBus(user: "alice")
            for (what, portal, iqn, error) in cases {
                let outcome = try await alice.call("/org/example/VMMS1/Host", "org.example.VMMS1.Host.CreateSAN",
                                                   [Names.unique("badsan"), "iSCSI", "{'Portal': <'\(portal)'>, 'Target': <'\(iqn)'>}"])
                #expect(!outcome.ok && outcome.errorName?.hasSuffix(error) == true, "\(what): \(outcome)")
                if error == "Failed" {
                    #expect(outcome.output.contains(portal) && outcome.output.contains(iqn.prefix(30)), "\(what) names portal and target: \(outcome.output)")
                    #expect(!outcome.output.contains("Can not reconnect"), "\(what): \(outcome.output)")
                }
            }
            let unknown = try await Self.busctl("alice", "/org/example/VMMS1/Host", "org.example.VMMS1.Host", "CreateSAN", "ssa{sv}",
                                                [Names.unique("badsan"), "Tape", "0"])
            #expect(!unknown.ok && unknown.output.contains("unknown SAN type"), "\(unknown.output)")
            // Fibre Channel: options checked first; then, with no NPIV-capable HBA on this
            // machine, NotSupported naming what is missing.
            let fibreChannel: [(String, String, String)] = [
                ("bad WWNN", "{'WWNN': <'20:00:00'>, 'WWPN': <'2001001b32a9da4e'>}", "InvalidArgs"),
                ("no WWPN", "{'WWNN': <'2001001b32a9da4e'>}", "InvalidArgs"),
                ("bad parent", "{'WWNN': <'2001001b32a9da4e'>, 'WWPN': <'2101001b32a9da4e'>, 'ParentAdapter': <'../x'>}", "InvalidArgs"),
                ("no NPIV HBA", "{'WWNN': <'2001001b32a9da4e'>, 'WWPN': <'2101001b32a9da4e'>}", "NotSupported"),
            ]
            for (what, options, error) in fibreChannel {
                let outcome = try await alice.call("/org/example/VMMS1/Host", "org.example.VMMS1.Host.CreateSAN",
                                                   [Names.unique("fcsan"), "FibreChannel", options])
                #expect(!outcome.ok && outcome.errorName?.hasSuffix(error) == true, "Fibre Channel, \(what): \(outcome)")
                if error == "NotSupported" {
                    #expect(outcome.output.contains("NPIV") && outcome.output.contains("vports"), "\(outcome.output)")
                }
            }
            #expect(try await Self.poolNames() == before, "a failed CreateSAN left a pool")

            // A pool defined with virsh behind the service's back is a SAN too, and follows
            // libvirt's pool events.
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let foreign = Names.unique("virshsan")
            let xml = NSTemporaryDirectory() + foreign + ".xml"
            try """
            <pool type='iscsi-direct'><name>\(foreign)</name><source><host name='127.0.0.1' port='\(target.port)'/>\
            <device path='\(target.iqn)'/><initiator><iqn name='iqn.2026-12.test.vmms:virsh'/></initiator></source></pool>
            """.write(toFile: xml, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: xml) }
            do {
                #expect(try await virsh(["pool-define", xml]).status == 0)
                #expect(try await virsh(["pool-start", foreign]).status == 0)
                let path = SANPaths.object(foreign)
                var luns: [(String, String, UInt64)] = []
                for _ in 0..<100 where luns.isEmpty {
                    luns = (try? await Self.luns(client, path)) ?? []
                    if luns.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(luns.map(\.2) == [8 * Self.mib], "\(luns)")
                #expect(try await virsh(["pool-destroy", foreign]).status == 0)
                var active: Bool? = true
                for _ in 0..<100 where active != false {
                    active = try await Self.active(client, path)
                    if active != false { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(active == false, "pool-destroy behind the service's back did not make the SAN inactive")
            } catch {
                await Self.cleanUp(vms: [], pool: foreign)
                throw error
            }
            await Self.cleanUp(vms: [], pool: foreign)
        } }
    }
}

extension SANTests {
    static func waitForActive(_ client: Client, _ path: ObjectPath, _ wanted: Bool, seconds: Int) async throws -> Bool {
        for _ in 0..<(seconds * 10) {
            if try await active(client, path) == wanted { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Nobody calls Refresh: the service's probe (every second here, 30 s by default) sees the
    /// target go and come back, and Active follows.
    @Test func activeFollowsTheTargetWithoutRefresh() async throws {
        try await SystemBusNameLock.with { try await Target.with(luns: [(1, 8)]) { target in
            let name = Names.unique("probesan")
            do {
                let service = try await SystemVMMSD(environment: ["VMMSD_TEST_SAN_PROBE_SECONDS": "1"])
                defer { service.stop() }
                let client = Client(bus: try DBusConnection(bus: .system))
                defer { client.bus.close() }
                let created = try await Self.createSAN("root", name, portal: "127.0.0.1:\(target.port)", target: target.iqn)
                #expect(created.ok, "\(created.output)")
                let path = SANPaths.object(name)
                #expect(try await Self.active(client, path) == true)
                await target.stop()
                #expect(try await Self.waitForActive(client, path, false, seconds: 20), "the SAN stayed active with its target gone")
                #expect(try await Self.luns(client, path).isEmpty)
                // CheckHealth names it, with its target and what to do.
                let findings = try await client.call("/org/example/VMMS1/Host", "org.example.VMMS1.Host", "CheckHealth")
                let sanFinding = findings.first?.arrayElements?.compactMap { item -> String? in
                    guard case .structure(let f) = item, f.count == 3, f[0].string == "vmms.san-active" else { return nil }
                    return f[2].string
                }.first
                #expect(sanFinding?.contains(name) == true && sanFinding?.contains(target.iqn) == true
                        && sanFinding?.contains("Refresh") == true, "\(String(describing: findings))")
                try await target.start()
                #expect(try await Self.waitForActive(client, path, true, seconds: 20), "the SAN did not come back with its target")
                #expect(try await Self.luns(client, path).map(\.2) == [8 * Self.mib])
                _ = try await client.call(path, Self.san, "Delete")
            } catch {
                await Self.cleanUp(vms: [], pool: name)
                throw error
            }
            await Self.cleanUp(vms: [], pool: name)
        } }
    }

    /// vmmsd killed right after libvirt defined the pool: the restarted service finds the
    /// journal entry and removes the pool, so no half-made SAN survives `kill -9`.
    @Test func aCrashDuringCreateSANLeavesNoPool() async throws {
        try await SystemBusNameLock.with { try await Target.with(luns: [(1, 8)]) { target in
            let name = Names.unique("crashsan")
            do {
                let state = NSTemporaryDirectory() + "vmms-system-\(UUID().uuidString)"
                let crashing = try await SystemVMMSD(stateDirectory: state, environment: ["VMMSD_TEST_CRASH_AT": "CreateSAN.defined"])
                let outcome = try await Self.createSAN("root", name, portal: "127.0.0.1:\(target.port)", target: target.iqn)
                #expect(!outcome.ok, "CreateSAN replied although vmmsd should have died: \(outcome.output)")
                for _ in 0..<100 where crashing.process.exitStatusIfExited() == nil { try await Task.sleep(for: .milliseconds(100)) }
                #expect(crashing.process.exitStatusIfExited() == 128 + SIGKILL, "vmmsd did not die at CreateSAN.defined: \(crashing.log)")
                crashing.stop()
                #expect(try await Self.poolNames().contains(name), "the crash point comes after libvirt defined the pool")

                let restarted = try await SystemVMMSD(stateDirectory: state)
                defer { restarted.stop() }
                var gone = false
                for _ in 0..<100 where !gone {
                    gone = !(try await Self.poolNames().contains(name))
                    if !gone { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(gone, "the pool of the interrupted CreateSAN is still defined")
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? []).isEmpty)
                let again = try await Self.createSAN("root", name, portal: "127.0.0.1:\(target.port)", target: target.iqn)
                #expect(again.ok, "\(again.output)")
                _ = try await TestSupport.busctl(as: "root", ["call", "org.example.VMMS1", again.output.split(separator: "\"").dropFirst().first.map(String.init) ?? "/",
                                                              "org.example.VMMS1.SAN", "Delete"])
                #expect(!(try await Self.poolNames().contains(name)))
            } catch {
                await Self.cleanUp(vms: [], pool: name)
                throw error
            }
            await Self.cleanUp(vms: [], pool: name)
        } }
    }
}

enum SANPaths {
    /// `/org/example/VMMS1/SAN/<name>` with the contract's escaping (bytes outside
    /// `[A-Za-z0-9]` as `_xx`).
    static func object(_ name: String) -> ObjectPath {
        ObjectPath("/org/example/VMMS1/SAN/" + name.utf8.map { byte in
            let c = Character(Unicode.Scalar(byte))
            return c.isASCII && (c.isLetter || c.isNumber) ? String(c) : "_" + String(byte, radix: 16).leftPadded(2)
        }.joined())!
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
