import Logging
import VMMSModel

/// What the handlers of every object kind use: the models, the libvirt link, the authorizer
/// and the helpers that act on libvirt. Built once, bottom-up, before the object server; it
/// holds nothing that holds it, so a stopped service is freed whole.
struct Services: Sendable {
    let host: HostModel
    let vms: VMModel
    let monitor: VMMonitor
    let link: HypervisorLink
    let authorizer: any Authorizer
    let disks: DiskStore
    let journal: OperationJournal
    let settingsStore: SettingsStore
    /// Serializes host settings changes (read, write the file, publish).
    let settingsGate: SerialGate
    let reserves: ProcessorReserves
    let health: HealthCheck
    let logger: Logger
    /// The SANs (iSCSI / Fibre Channel storage pools) and what keeps them current.
    let sans: SANModel
    let sanMonitor: SANMonitor
    /// Export, Import and Move jobs.
    let jobs: JobRunner
    let switches: SwitchModel
    let switchMonitor: SwitchMonitor
    /// Serializes switch creation, deletion and adapter additions (which check the switch).
    let switchGate: SerialGate
    let macs: MACReservations
    /// Every VM's checkpoint tree.
    let checkpoints: CheckpointStore
    /// `migration-destinations` of vmmsd.conf: the hosts callers other than root may Move to.
    var migrationDestinations: [String] = []

    /// The name of a VM other than `except` with `path` (symlinks resolved) as a hard disk.
    func vmUsingDisk(_ path: String, except: String? = nil) -> String? {
        let resolved = StorageRoots.resolve(path) ?? path
        return vms.records(except: except).first { record in
            record.configuration.hardDisks.contains { (StorageRoots.resolve($0.path) ?? $0.path) == resolved }
        }?.name
    }

    /// The `<domain type>` for new VMs: the test driver's own, else KVM or TCG as the host
    /// decided from the accelerator setting.
    var domainType: String {
        switch host.info.hypervisor {
        case "test": "test"
        case "kvm": "kvm"
        default: "qemu"
        }
    }

    /// Records a change the service made, like Hyper-V's VMMS admin event log.
    func audit(_ caller: Caller, _ what: String) {
        logger.notice("\(caller): \(what)")
    }
}

/// Who called, for the audit log.
struct Caller: Sendable, CustomStringConvertible {
    let uid: UInt32?
    let busName: String
    var description: String { uid.map { "uid \($0) (\(busName))" } ?? busName }
}
