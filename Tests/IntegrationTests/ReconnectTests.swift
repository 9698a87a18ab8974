import DBus
import Foundation
import TestSupport
import Testing

/// The service outlives libvirtd: it says so in `Host.Connected`, refuses work with
/// HypervisorUnavailable meanwhile, reconnects by itself and catches up on what changed.
@Suite(.disturbsLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct ReconnectTests {
    static let host: ObjectPath = "/org/example/VMMS1/Host"

    func connected(_ bus: DBusConnection) async throws -> Bool? {
        try await bus.call(destination: "org.example.VMMS1", path: Self.host, interface: "org.freedesktop.DBus.Properties",
                           member: "Get", [.string("org.example.VMMS1.Host"), .string("Connected")]).first?.variant?.boolean
    }

    @Test func serviceSurvivesALibvirtdRestartAndCatchesUp() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let bus = try DBusConnection(bus: .system)
            defer { bus.close() }
            let changes = try await bus.signals(matching: MatchRule(sender: "org.example.VMMS1", path: Self.host,
                                                                    interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged"))
            let seen = Log()
            let watcher = Task {
                for await signal in changes {
                    if let value = signal.body.dropFirst().first?.stringKeyedDictionary?["Connected"]?.boolean {
                        await seen.append(value ? "true" : "false")
                    }
                }
            }
            #expect(try await connected(bus) == true)

            try await Libvirtd.stop()
            var down = try await connected(bus)
            for _ in 0..<200 where down != false {
                try await Task.sleep(for: .milliseconds(25))
                down = try await connected(bus)
            }
            #expect(down == false)
            do {
                _ = try await bus.call(destination: "org.example.VMMS1", path: Self.host, interface: "org.example.VMMS1.Host",
                                       member: "CreateVM", [.string(Names.unique("while-down")), .vardict([:])])
                Issue.record("CreateVM worked without libvirtd")
            } catch let error as DBusError {
                #expect(error.name == "org.example.VMMS1.Error.HypervisorUnavailable", "\(error)")
            }

            // A VM defined right after libvirtd returns, before the service has reconnected.
            try await Libvirtd.start()
            let name = Names.unique("reconnect")
            let xml = NSTemporaryDirectory() + name + ".xml"
            try "<domain type='qemu'><name>\(name)</name><memory unit='MiB'>32</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
                .write(toFile: xml, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: xml) }
            #expect(try await virsh(["define", xml]).status == 0)

            var found: ObjectPath?
            for _ in 0..<400 where found == nil {
                found = try? await bus.call(destination: "org.example.VMMS1", path: Self.host, interface: "org.example.VMMS1.Host",
                                            member: "LookupVM", [.string(name)]).first?.objectPath
                if found == nil { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(found != nil, "the VM defined after the restart did not appear: \(service.log)")
            #expect(try await connected(bus) == true)
            try await Task.sleep(for: .milliseconds(200))
            watcher.cancel()
            #expect(await seen.values == ["false", "true"])
            _ = try await virsh(["undefine", name])
        }
    }

    @Test func serviceStartsWithoutLibvirtdAndConnectsWhenItComes() async throws {
        try await SystemBusNameLock.with {
            try await Libvirtd.stop()
            let service: SystemVMMSD
            do {
                service = try await SystemVMMSD()
            } catch {
                try await Libvirtd.start()
                throw error
            }
            defer { service.stop() }
            let bus = try DBusConnection(bus: .system)
            defer { bus.close() }
            #expect(try await connected(bus) == false)
            try await Libvirtd.start()
            var up = try await connected(bus)
            for _ in 0..<400 where up != true {
                try await Task.sleep(for: .milliseconds(25))
                up = try await connected(bus)
            }
            #expect(up == true, "\(service.log)")
        }
    }
}
