/// The `State` property of a VM, Hyper-V's names for what libvirt reports.
public enum VMState: String, Sendable, CaseIterable {
    case off = "Off"
    case starting = "Starting"
    case running = "Running"
    case paused = "Paused"
    case saving = "Saving"
    case saved = "Saved"
    case stopping = "Stopping"
    case crashed = "Crashed"

    /// Maps libvirt's `virDomainState`, its reason and whether a managed-save image exists.
    ///
    /// | libvirt state | reason | → |
    /// |---|---|---|
    /// | 0 nostate | any | Off |
    /// | 1 running, 2 blocked | any | Running |
    /// | 3 paused | 3 save | Saving |
    /// | 3 paused | 11 starting_up | Starting |
    /// | 3 paused | 8 shutting_down | Stopping |
    /// | 3 paused | 10 crashed (guest panic) | Crashed |
    /// | 3 paused | anything else (user, ioerror, migration, snapshot, …) | Paused |
    /// | 4 shutdown (being shut down) | any | Stopping |
    /// | 5 shutoff | any, managed-save image present | Saved |
    /// | 5 shutoff | any other, including 3 crashed | Off |
    /// | 6 crashed | any | Crashed |
    /// | 7 pmsuspended | any | Paused |
    /// | unknown (newer libvirt) | any | Off |
    ///
    /// A VM that is shut off after a crash (`VIR_DOMAIN_SHUTOFF_CRASHED`, what `on_crash`
    /// `destroy` leaves behind) is `Off`: as in Hyper-V, a VM that no longer runs can simply be
    /// started again, and nothing about it is still crashed. `Crashed` is reserved for a domain
    /// libvirt still holds in a crashed state (`on_crash` `preserve`, or paused on a guest panic).
    public static func from(libvirtState: Int32, reason: Int32, hasManagedSave: Bool) -> VMState {
        switch libvirtState {
        case 1, 2: return .running
        case 3:
            switch reason {
            case 3: return .saving
            case 8: return .stopping
            case 10: return .crashed
            case 11: return .starting
            default: return .paused
            }
        case 4: return .stopping
        case 5: return hasManagedSave ? .saved : .off
        case 6: return .crashed
        case 7: return .paused
        default: return .off
        }
    }
}
