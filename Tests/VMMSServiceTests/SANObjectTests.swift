import DBus
import Foundation
import Libvirt
import TestSupport
import Testing
@testable import VMMSService
import VMMSModel

/// SAN objects over libvirt's test driver: pools defined behind the service's back appear and
/// go, the interface matches dbus/org.example.VMMS1.SAN.xml, CreateSAN refuses bad input
/// before libvirt is touched, and a Fibre Channel SAN takes libvirt's vHBA path where the host
/// (the test driver's scsi_host1) has an NPIV-capable HBA.
@Suite(.serialized) struct SANObjectTests {
    static let san = "org.example.VMMS1.SAN"
    static let hostInterface = "org.example.VMMS1.Host"

    static func sans(_ f: ServiceFixture) async throws -> [ObjectPath] {
        guard case .array(_, let items)? = try await f.hostProperty("SANs") else { return [] }
        return items.compactMap(\.objectPath)
    }

    static func waitFor(_ f: ServiceFixture, _ condition: @escaping ([ObjectPath]) -> Bool) async throws -> Bool {
        for _ in 0..<200 {
            if condition(try await sans(f)) { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    static func pools() throws -> Set<String> {
        Set(try LibvirtConnection(uri: "test:///default").allPools().compactMap { try? $0.name })
    }

    @Test func aPoolDefinedOutsideAppearsWithTheInterfaceOfTheXMLFile() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = "ut-san-\(UUID().uuidString.prefix(6).lowercased())"
        let virsh = try LibvirtConnection(uri: "test:///default")
        let pool = try virsh.definePool(xml: """
        <pool type='iscsi-direct'><name>\(name)</name><source><host name='127.0.0.1' port='3270'/>\
        <device path='iqn.2026-12.test.vmms:ut'/><initiator><iqn name='iqn.2026-01.org.example.vmms:ut'/></initiator></source></pool>
        """)
        defer { try? pool.undefine() }
        let path = Paths.san(name: name)
        #expect(try await Self.waitFor(f) { $0.contains(path) }, "the defined pool never became a SAN")
        #expect(!(try await Self.sans(f)).contains(Paths.san(name: "default-pool")), "a directory pool is no SAN")

        let all = try #require(try await f.call(path, "org.freedesktop.DBus.Properties", "GetAll", [.string(Self.san)]).first?.stringKeyedDictionary)
        #expect(all["Type"] == .string("iSCSI") && all["Portal"] == .string("127.0.0.1:3270") && all["Target"] == .string("iqn.2026-12.test.vmms:ut"))
        #expect(all["Active"] == .boolean(false))

        let expected = try InterfaceShape.parse(String(contentsOfFile: repositoryRoot + "/dbus/org.example.VMMS1.SAN.xml", encoding: .utf8))
        let live = try InterfaceShape.parse(try #require(try await f.call(path, "org.freedesktop.DBus.Introspectable", "Introspect").first?.string))
        #expect(expected[Self.san] != nil)
        #expect(live[Self.san] == expected[Self.san], "org.example.VMMS1.SAN.xml differs from what \(path) introspects")

        // Started behind the service's back: Active follows libvirt's event.
        try pool.create()
        var active = false
        for _ in 0..<200 where !active {
            active = try await f.call(path, "org.freedesktop.DBus.Properties", "Get", [.string(Self.san), .string("Active")]).first?.variant == .boolean(true)
            if !active { try await Task.sleep(for: .milliseconds(25)) }
        }
        #expect(active)

        _ = try await f.call(path, Self.san, "Delete")
        #expect(try await Self.waitFor(f) { !$0.contains(path) })
        #expect(!(try Self.pools()).contains(name))
        await expectDBusError("org.example.VMMS1.Error.NotFound", "Refresh of a deleted SAN") {
            _ = try await f.call(path, Self.san, "Refresh")
        }
    }

    @Test(arguments: [
        ("iSCSI", ["Portal": DBusValue.string("127.0.0.1:70000"), "Target": .string("iqn.2026-12.test.vmms:x")]),
        ("iSCSI", ["Portal": .string("127.0.0.1"), "Target": .string("not-an-iqn")]),
        ("iSCSI", ["Portal": .string("127.0.0.1")]),
        ("iSCSI", ["Portal": .string("127.0.0.1"), "Target": .string("iqn.2026-12.test.vmms:x"), "InitiatorName": .string("me")]),
        ("iSCSI", ["Portal": .string("127.0.0.1"), "Target": .string("iqn.2026-12.test.vmms:x"), "Colour": .string("red")]),
        ("iSCSI", ["Portal": .uint32(3260), "Target": .string("iqn.2026-12.test.vmms:x")]),
        ("FibreChannel", ["WWNN": .string("5001a4a93526d0a1"), "WWPN": .string("xyz")]),
        ("FibreChannel", ["WWNN": .string("5001a4a93526d0a1"), "WWPN": .string("5001a4ace3ee047d"), "ParentAdapter": .string("eth0")]),
        ("Tape", [:]),
    ])
    func badCreateSANIsInvalidArgsAndDefinesNothing(type: String, options: [String: DBusValue]) async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let before = try Self.pools()
        await expectDBusError(DBusError.Name.invalidArgs, "CreateSAN \(type) \(options)") {
            _ = try await f.call(Paths.host, Self.hostInterface, "CreateSAN", [.string("ut-bad"), .string(type), .vardict(options)])
        }
        #expect(try Self.pools() == before)
    }

    /// Port 1 on loopback is closed: the TCP probe answers at once, before libvirt is asked.
    @Test func aTargetThatDoesNotAnswerIsNamedAndLeavesNoPool() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let before = try Self.pools()
        do {
            _ = try await f.call(Paths.host, Self.hostInterface, "CreateSAN", [.string("ut-down"), .string("iSCSI"),
                .vardict(["Portal": .string("127.0.0.1:1"), "Target": .string("iqn.2026-12.test.vmms:down")])])
            Issue.record("CreateSAN of a closed portal succeeded")
        } catch let error as DBusError {
            #expect(error.name == "org.example.VMMS1.Error.Failed")
            #expect(error.message.contains("127.0.0.1:1") && error.message.contains("iqn.2026-12.test.vmms:down"), "\(error.message)")
            #expect(!error.message.contains("reconnect"), "libiscsi's words leak: \(error.message)")
        }
        #expect(try Self.pools() == before)
    }

    /// The test driver's scsi_host1 is an fc_host with vport_ops: the vHBA pool is defined and
    /// started, and shows as a FibreChannel SAN on that parent.
    @Test func fibreChannelOnAnNPIVHostIsAVHBAPool() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = "ut-fc-\(UUID().uuidString.prefix(6).lowercased())"
        let path = try #require(try await f.call(Paths.host, Self.hostInterface, "CreateSAN", [.string(name), .string("FibreChannel"),
            .vardict(["ParentAdapter": .string("scsi_host1"), "WWNN": .string("50:01:a4:a9:35:26:d0:a1"), "WWPN": .string("5001a4ace3ee047d")])]).first?.objectPath)
        #expect(path == Paths.san(name: name))
        let xml = try LibvirtConnection(uri: "test:///default").pool(name: name).xmlDesc()
        #expect(xml.contains("<adapter type='fc_host' parent='scsi_host1' managed='yes' wwnn='5001a4a93526d0a1' wwpn='5001a4ace3ee047d'/>"), "\(xml)")
        let all = try #require(try await f.call(path, "org.freedesktop.DBus.Properties", "GetAll", [.string(Self.san)]).first?.stringKeyedDictionary)
        #expect(all["Type"] == .string("FibreChannel") && all["Portal"] == .string("scsi_host1") && all["Active"] == .boolean(true))
        #expect(all["Target"] == .string("5001a4a93526d0a1:5001a4ace3ee047d"))
        await expectDBusError("org.example.VMMS1.Error.NotSupported", "a parent that is no NPIV HBA") {
            _ = try await f.call(Paths.host, Self.hostInterface, "CreateSAN", [.string(name + "-2"), .string("FibreChannel"),
                .vardict(["ParentAdapter": .string("scsi_host9"), "WWNN": .string("5001a4a93526d0a2"), "WWPN": .string("5001a4ace3ee047e")])])
        }
        await expectDBusError("org.example.VMMS1.Error.AlreadyExists", "the same name again") {
            _ = try await f.call(Paths.host, Self.hostInterface, "CreateSAN", [.string(name), .string("FibreChannel"),
                .vardict(["WWNN": .string("5001a4a93526d0a2"), "WWPN": .string("5001a4ace3ee047e")])])
        }
        // No Delete: the test driver starts a vHBA pool without making the vHBA's node device,
        // then fails to stop it ("no node device with matching name"); the pool stays in this
        // process's in-memory driver only.
    }
}
