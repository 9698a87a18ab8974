import Foundation
import Glibc
import Spawn
import Testing
import TestSupport

/// `--address` against vmmsd on a private bus with libvirt's test driver, as `make run`
/// serves it: no root, no libvirtd, no system bus.
@Suite struct PrivateBusTests {
    @Test func addressReachesAServiceOnAPrivateBus() async throws {
        let bus = try PrivateBus()
        let state = NSTemporaryDirectory() + "vmmsctl-private-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let vmmsd = try ChildProcess(builtVMMSD, ["--address", bus.address, "--connect", "test:///default", "--state-dir", state],
                                     stderrPath: state + ".log")
        defer {
            vmmsd.signal(SIGTERM)
            vmmsd.wait()
            try? FileManager.default.removeItem(atPath: state + ".log")
        }
        let address = ["--address", bus.address]
        let up = try await eventually(timeout: .seconds(20)) { try await Ctl.run(["host", "get", "Hypervisor"] + address).status == 0 }
        #expect(up, "vmmsd on the private bus did not answer")
        #expect(try await Ctl.ok(["host", "get", "Hypervisor"] + address) == "test\n")

        // libvirt's test driver has one running VM called "test".
        let table = parseTable(try await Ctl.ok(address + ["list"]))
        #expect(table.first { $0["Name"] == "test" }?["State"] == "Running", "\(table)")
        try await Ctl.ok(["pause", "test"] + address)
        #expect(parseTable(try await Ctl.ok(["list", "test"] + address)).first?["State"] == "Paused")
        try await Ctl.ok(["resume", "test"] + address)
        let name = Names.unique("private")
        try await Ctl.ok(["create", name, "--memory", "64M"] + address)
        try await Ctl.ok(["delete", "--yes", name] + address)
        Ctl.expect(try await Ctl.run(["show", name] + address), 4, "show of the deleted VM")
    }
}
