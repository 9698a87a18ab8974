import DBus
import Foundation
import Libvirt
import Synchronization
import VMMSModel

/// MACs handed out by calls still running, so two concurrent adds never pick the same one.
final class MACReservations: Sendable {
    private let reserved = Mutex<Set<String>>([])

    /// A MAC from vmms's range used by no VM on the host and by no call in progress.
    func allocate(vms: VMModel) throws -> String {
        let used = Set(vms.records().flatMap { $0.configuration.networkAdapters.map { $0.mac.lowercased() } })
        return try reserved.withLock { reserved in
            guard let mac = MACAddressRule.allocate(avoiding: used.union(reserved), random: { UInt32.random(in: 0...0xFF_FFFF) }) else {
                throw VMMSError.insufficientResources("no free MAC address is left in \(MACAddressRule.prefix):xx:xx:xx")
            }
            reserved.insert(mac)
            return mac
        }
    }

    func release(_ mac: String) { _ = reserved.withLock { $0.remove(mac) } }
}

/// `AddNetworkAdapter` and `RemoveNetworkAdapter` (Add-/Remove-VMNetworkAdapter): virtio NICs
/// on a switch's libvirt network, hot-plugged into running VMs.
extension VMInterface {
    /// How long a running guest gets to release an adapter before the removal gives up.
    static let adapterRemovalTimeout: Duration = .seconds(10)
    static let maximumAdapterRemovalTimeout: UInt32 = 300

    func addNetworkAdapter(_ call: MethodCall) async throws -> String {
        guard let path = call.arguments.first?.objectPath else { throw VMMSError.invalidArgs("AddNetworkAdapter takes a switch object path") }
        guard let switchName = Paths.switchName(of: path) else {
            throw VMMSError.invalidArgs("\(path) is not a switch path (\(Paths.switchRoot)/<name>); see Host.Switches")
        }
        let record = try current()
        try await services.authorizer.authorize(call, .vmConfigure,
            AuthorizationDetails(verb: "AddNetworkAdapter", vmName: record.name, vmUUID: uuid, switchName: switchName))
        let services = self.services
        let (vm, mac) = try await services.switchGate.run {
            try await operation("AddNetworkAdapter", allowed: Self.configurable, full: true) { record -> (VMRecord, String) in
                guard let network = services.switches.record(named: switchName) else {
                    throw VMMSError.notFound("the switch \(switchName) does not exist; see Host.Switches")
                }
                let mac = try services.macs.allocate(vms: services.vms)
                defer { services.macs.release(mac) }
                try await plugAdapter(mac: mac, network: network, into: record)
                return (record, mac)
            }
        }
        services.audit(await call.caller(), "AddNetworkAdapter \(mac) on \(switchName) to \(vm.name) (\(uuid))")
        return mac
    }

    /// Adds the adapter to the definition and, while the VM runs, to the guest.
    private func plugAdapter(mac: String, network: SwitchRecord, into record: VMRecord) async throws {
        let running = record.state != .off
        if running, !network.active {
            throw VMMSError.invalidState(current: record.state.rawValue,
                message: "the switch \(network.name) is not active; start it (virsh net-start) before adding an adapter to the running \(record.name)")
        }
        let name = network.name
        try await withConnection { connection, domain in
            // q35 hot-plugs only into a free PCIe root port; i440fx (with ACPI) into pci.0.
            if running {
                let live = try DomainEditor(xml: try domain.xml())
                if live.isQ35, live.freeRootPorts == 0 {
                    throw VMMSError.invalidState(current: record.state.rawValue,
                        message: "\(record.name) has no free PCIe root port to hot-plug into; turn it off to add an adapter")
                }
            }
            try Self.redefine(connection, domain, edit: { try $0.addInterface(mac: mac, network: name) }, live: {
                guard running else { return }
                do {
                    try domain.attachDevice(xml: DomainXML.interfaceXML(mac: mac, network: name), flags: .live)
                } catch let error as LibvirtError {
                    throw VMMSError.invalidState(current: record.state.rawValue,
                        message: "the adapter cannot be added to the running \(record.name) (\(error.message)); turn it off to add an adapter")
                }
            })
        }
    }

    /// Gives a generation-2 (q35) VM `DomainEditor.spareRootPorts` free PCIe root ports, so
    /// adapters and disks can be hot-plugged: libvirt places every device on a root port of
    /// its own, and adds none to spare.
    static func keepSpareRootPorts(_ connection: LibvirtConnection, _ domain: LibvirtDomain) throws {
        let editor = try DomainEditor(xml: try domain.xml(flags: [.inactive, .secure]))
        let missing = DomainEditor.spareRootPorts - editor.freeRootPorts
        guard editor.isQ35, missing > 0 else { return }
        try editor.addRootPorts(missing)
        _ = try connection.defineDomain(xml: editor.xml)
    }

    func removeNetworkAdapter(_ call: MethodCall) async throws {
        guard let text = call.arguments.first?.string else { throw VMMSError.invalidArgs("\(call.member) takes a MAC address") }
        let options = call.arguments.count > 1
            ? try Options(call.arguments[1], method: call.member, allowed: ["Force": "b", "TimeoutSeconds": "u"]) : nil
        let force = options?.bool("Force") ?? false
        let seconds = options?.uint32("TimeoutSeconds")
        if let seconds, !(1...Self.maximumAdapterRemovalTimeout).contains(seconds) {
            throw VMMSError.invalidArgs("TimeoutSeconds must be between 1 and \(Self.maximumAdapterRemovalTimeout)")
        }
        guard let mac = MACAddressRule.normalize(text) else {
            throw VMMSError.invalidArgs("'\(text)' is not a MAC address (six hex octets separated by ':'); the VM's adapters are in NetworkAdapters")
        }
        let record = try current()
        let switchName = record.configuration.networkAdapters.first { $0.mac.lowercased() == mac }?.network
        try await services.authorizer.authorize(call, .vmConfigure,
            AuthorizationDetails(verb: "RemoveNetworkAdapter", vmName: record.name, vmUUID: uuid, switchName: switchName))
        let timeout = seconds.map { Duration.seconds(Int($0)) } ?? Self.adapterRemovalTimeout
        let (vm, removed) = try await operation("RemoveNetworkAdapter", allowed: Self.configurable, full: true) { record -> (VMRecord, Bool) in
            guard let adapter = record.configuration.networkAdapters.first(where: { $0.mac.lowercased() == mac }) else {
                throw VMMSError.invalidArgs("\(record.name) has no network adapter with the MAC \(mac); its adapters are in NetworkAdapters")
            }
            var unplugged = true
            if record.state != .off {
                unplugged = try await unplugAdapter(adapter, from: record, timeout: timeout, force: force)
            }
            try await withConnection { connection, domain in
                try Self.redefine(connection, domain, edit: { $0.removeInterface(mac: mac) }, live: {})
            }
            return (record, unplugged)
        }
        services.audit(await call.caller(), "RemoveNetworkAdapter \(mac) from \(vm.name) (\(uuid))\(removed ? "" : ", in the definition only (Force): the running guest keeps it until it stops")")
    }

    /// Detaches the adapter from the running guest and waits for libvirt's device-removed
    /// event (a detach that returns is only a request to the guest). Without the event within
    /// `timeout` the call fails and nothing changes, unless `force`: then false, and the
    /// caller removes it from the definition only.
    private func unplugAdapter(_ adapter: VMConfiguration.NetworkAdapter, from record: VMRecord, timeout: Duration, force: Bool) async throws -> Bool {
        let mac = adapter.mac.lowercased()
        let alias = try await withDomain { try DomainEditor(xml: try $0.xml()).alias(ofInterfaceMAC: mac) }
        guard let alias else { return true }
        let xml = DomainXML.interfaceXML(mac: mac, network: adapter.network ?? "")
        services.monitor.expectRemoval(uuid: uuid, alias: alias)
        do {
            try await withDomain { try $0.detachDevice(xml: xml, flags: .live) }
        } catch let error as LibvirtError {
            _ = await services.monitor.waitForRemoval(uuid: uuid, alias: alias, timeout: .zero)
            guard force else {
                throw VMMSError.invalidState(current: record.state.rawValue,
                    message: "the adapter \(mac) cannot be removed from the running \(record.name) (\(error.message)); turn it off first, or pass Force to remove it at the next start")
            }
            return false
        }
        let stillThere = try await withDomain { try DomainEditor(xml: try $0.xml()).alias(ofInterfaceMAC: mac) == alias }
        if await services.monitor.waitForRemoval(uuid: uuid, alias: alias, timeout: stillThere ? timeout : .zero) || !stillThere {
            return true
        }
        guard force else {
            throw VMMSError.timeout("the guest in \(record.name) did not release the adapter \(mac) within \(timeout); it stays attached and in the definition (a guest without an OS never releases it: turn the VM off, or pass Force to remove it at the next start)")
        }
        return false
    }
}
