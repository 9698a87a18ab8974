import DBus
import Libvirt
import Logging

/// What every object of the service shares: the connections, the worker, the authorizer,
/// the host and the VM inventory.
final class ServiceContext: Sendable {
    let link: HypervisorLink
    let authorizer: any Authorizer
    let server: ObjectServer
    let host: HostObject
    let inventory: VMInventory
    let disks: DiskStore
    let logger: Logger

    init(link: HypervisorLink, authorizer: any Authorizer, server: ObjectServer,
         host: HostObject, inventory: VMInventory, disks: DiskStore, logger: Logger) {
        self.link = link
        self.authorizer = authorizer
        self.server = server
        self.host = host
        self.inventory = inventory
        self.disks = disks
        self.logger = logger
    }

    /// The `<domain type>` for new VMs: the test driver's own, else KVM or TCG as the host
    /// decided from the accelerator setting.
    var domainType: String {
        switch host.model.info.hypervisor {
        case "test": "test"
        case "kvm": "kvm"
        default: "qemu"
        }
    }
}
