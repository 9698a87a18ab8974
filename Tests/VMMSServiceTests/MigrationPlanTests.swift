import Libvirt
import Testing
import VMMSModel
@testable import VMMSService

/// What VM.Move accepts as another host, the allow-list match and the migration flags.
struct MigrationPlanTests {
    @Test func onlyRemoteQEMUSystemURIsAreDestinations() {
        #expect(VMMigrator.host(of: "qemu+ssh://host2/system") == "host2")
        #expect(VMMigrator.host(of: "qemu+ssh://root@host2:2222/system") == "host2")
        #expect(VMMigrator.host(of: "qemu+tcp://10.250.0.2/system") == "10.250.0.2")
        #expect(VMMigrator.host(of: "qemu+tls://host3.example.com/system") == "host3.example.com")
        for uri in ["qemu:///system", "qemu+ssh://host2/session", "qemu+unix:///system", "test:///default",
                    "qemu+ssh:///system", "/var/lib/vmms", "qemu+ext://host/system?command=/bin/sh"] {
            #expect(VMMigrator.host(of: uri) == nil, "\(uri)")
        }
    }

    @Test func theAllowListMatchesWholeURIsOnly() {
        let allowed = ["qemu+ssh://host2/system", "qemu+tcp://10.250.0.2/system/"]
        #expect(VMMigrator.isAllowed("qemu+ssh://host2/system", in: allowed))
        #expect(VMMigrator.isAllowed("qemu+ssh://host2/system/", in: allowed))
        #expect(VMMigrator.isAllowed("qemu+tcp://10.250.0.2/system", in: allowed))
        #expect(!VMMigrator.isAllowed("qemu+ssh://host2.evil/system", in: allowed))
        #expect(!VMMigrator.isAllowed("qemu+tls://host2/system", in: allowed))
        #expect(!VMMigrator.isAllowed("qemu+ssh://host2/system", in: []))
    }

    @Test func flagsFollowTheState() {
        func plan(_ state: VMState, storage: Bool = false) -> VMMigrator.Plan {
            .init(uuid: "u", name: "n", destination: "qemu+tcp://h/system", migrateURI: "tcp://h", state: state,
                  includeStorage: storage, disks: [])
        }
        #expect(plan(.off).flags == [.peerToPeer, .persistDestination, .undefineSource, .offline])
        #expect(plan(.running).flags == [.peerToPeer, .persistDestination, .undefineSource, .live, .unsafe])
        #expect(plan(.paused).flags.contains(.paused))
        #expect(plan(.running, storage: true).flags.contains(.nonSharedDisk) && !plan(.running, storage: true).flags.contains(.unsafe))
    }
}
