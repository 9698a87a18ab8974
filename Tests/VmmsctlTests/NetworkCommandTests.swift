import DBus
import Foundation
import Testing
import TestSupport
@testable import vmmsctl

/// `vmmsctl switch` and `vmmsctl adapter` against the real service.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct NetworkCommandTests {
    @Test func switchesAndAdaptersRoundTripThroughTheService() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let (lab, vmName) = (Names.unique("sw"), Names.unique("swvm"))
            defer {
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "net-destroy", lab])
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "net-undefine", lab])
            }
            try await cleaningUp([vmName]) {
                let path = try await Ctl.ok(["switch", "create", lab, "--type", "Private"]).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(path == SwitchAPI.path(lab).rawValue)
                let listed = try #require(try parseJSON(try await Ctl.ok(["switch", "list", "--json"])) as? [[String: Any]])
                let row = try #require(listed.first { $0["Name"] as? String == lab })
                #expect(row["Type"] as? String == "Private" && row["Active"] as? Bool == true, "\(row)")
                #expect(try await Ctl.ok(["switch", "list"]).contains(lab))

                try await Ctl.ok(["create", vmName, "--generation", "1", "--memory", "64M"])
                let mac = try await Ctl.ok(["adapter", "add", vmName, lab]).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(mac.hasPrefix("02:56:4d:"))
                let adapters = try #require(try parseJSON(try await Ctl.ok(["adapter", "list", vmName, "--json"])) as? [[String: String]])
                #expect(adapters == [["MAC": mac, "Switch": lab]])
                let vm = try await dbus.vm(named: vmName)
                #expect(vm["NetworkAdapters"] == .array("(so)", [.structure([.string(mac), .objectPath(SwitchAPI.path(lab))])]))

                let refused = try await Ctl.run(["switch", "delete", lab])
                #expect(refused.status != 0 && refused.stderr.contains(vmName), "\(refused.stderr)")
                try await Ctl.ok(["adapter", "remove", vmName, mac])
                #expect(try await Ctl.ok(["adapter", "list", vmName, "--json"]).trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
                try await Ctl.ok(["switch", "delete", lab])
                #expect(!(try await Ctl.ok(["switch", "list"]).contains(lab)))
            }
        }
    }

    @Test func theManualHasTheNetworkingVerbs() throws {
        let page = ManualPage.render(try ManualPage.toolInfo(), date: Date(timeIntervalSince1970: 0))
        for verb in ["switch list", "switch create", "switch delete", "adapter list", "adapter add", "adapter remove"] {
            #expect(page.contains(".Ss vmmsctl \(verb)\n"), "no section for \(verb)")
        }
    }
}
