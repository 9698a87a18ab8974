import Testing
import VMMSModel

@Suite struct VMStateTests {
    // (virDomainState, reason, managed save image, expected)
    static let table: [(Int32, Int32, Bool, VMState)] = [
        (0, 0, false, .off),            // nostate
        (1, 1, false, .running),        // running, booted
        (1, 3, false, .running),        // running, restored
        (1, 5, true, .running),         // running, unpaused; a stale image does not matter
        (2, 0, false, .running),        // blocked
        (3, 0, false, .paused),         // paused, unknown
        (3, 1, false, .paused),         // paused, user
        (3, 2, false, .paused),         // migration
        (3, 3, false, .saving),         // save
        (3, 4, false, .paused),         // dump
        (3, 5, false, .paused),         // ioerror
        (3, 6, false, .paused),         // watchdog
        (3, 7, false, .paused),         // from snapshot
        (3, 8, false, .stopping),       // shutting down
        (3, 9, false, .paused),         // snapshot
        (3, 10, false, .crashed),       // crashed (guest panic)
        (3, 11, false, .starting),      // starting up
        (3, 12, false, .paused),        // postcopy
        (3, 13, false, .paused),        // postcopy failed
        (4, 1, false, .stopping),       // shutdown, user
        (5, 0, false, .off),            // shutoff, unknown
        (5, 1, false, .off),            // shutoff, shutdown
        (5, 2, false, .off),            // destroyed
        (5, 3, false, .off),            // shutoff after a crash: Off, as in Hyper-V
        (5, 4, false, .off),            // migrated
        (5, 5, true, .saved),           // saved
        (5, 2, true, .saved),           // any shutoff with a managed-save image
        (6, 0, false, .crashed),        // crashed
        (6, 1, false, .crashed),        // crashed, panicked
        (7, 0, false, .paused),         // pmsuspended
        (8, 0, false, .off),            // a state newer than this code
        (-1, 0, false, .off),
    ]

    @Test(arguments: table)
    func mapsLibvirtStateReasonAndManagedSave(state: Int32, reason: Int32, managedSave: Bool, expected: VMState) {
        #expect(VMState.from(libvirtState: state, reason: reason, hasManagedSave: managedSave) == expected)
    }

    @Test func rawValuesAreTheContractsNames() {
        #expect(VMState.allCases.map(\.rawValue) == ["Off", "Starting", "Running", "Paused", "Saving", "Saved", "Stopping", "Crashed"])
    }
}
