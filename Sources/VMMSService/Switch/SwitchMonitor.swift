import Libvirt
import Logging
import VMMSModel

/// Keeps the switch model current: every libvirt network is read at each new connection and
/// again after each of its lifecycle events (defined, undefined, started, stopped), so
/// networks made or destroyed with `virsh` show within milliseconds. When a switch starts
/// again, the adapters of running VMs that libvirt orphaned when it stopped are put back
/// into its bridge, and an External switch's bridge that vmms made is made again if it is
/// gone (after a host reboot).
final class SwitchMonitor: Sendable {
    let link: HypervisorLink
    let switches: SwitchModel
    let vms: VMModel
    let logger: Logger
    /// Readings one at a time, so an older reading never lands after a newer one.
    private let gate = SerialGate()

    init(link: HypervisorLink, switches: SwitchModel, vms: VMModel, logger: Logger) {
        self.link = link
        self.switches = switches
        self.vms = vms
        self.logger = logger
    }

    func watchEvents(_ connection: LibvirtConnection) throws -> EventRegistration {
        try connection.registerNetworkEvents { [self] event in
            let started = event.lifecycleEvent == .started
            Task {
                await self.refresh(name: event.name)
                if started { await self.replug(name: event.name) }
            }
        }
    }

    /// Reads every network and replaces the model with what libvirt has.
    func synchronize(_ connection: LibvirtConnection) async throws {
        try await gate.run {
            let records = try await link.worker.run { try connection.allNetworks().compactMap { try? Self.read($0) } }
            switches.applyListing(records)
            logger.info("\(records.count) switches in libvirt")
        }
        for record in switches.all where record.managedBridge && !record.bridge.isEmpty {
            await ensureBridge(record)
        }
    }

    /// Reads one network again (gone: removed from the model).
    func refresh(name: String) async {
        do {
            try await gate.run {
                let record = try await link.run { connection -> SwitchRecord? in
                    do {
                        return try Self.read(try connection.network(name: name))
                    } catch let error as LibvirtError where error.isNoNetwork {
                        return nil
                    }
                }
                switches.apply(name: name, record)
            }
        } catch {
            logger.warning("cannot read the switch \(name): \(error)")
        }
    }

    static func read(_ network: LibvirtNetwork) throws -> SwitchRecord {
        var record = try NetworkXML.parse(try network.xmlDesc())
        record.active = try network.isActive
        return record
    }

    /// An External switch whose bridge vmms made: the bridge again, around its NIC, when it is
    /// gone and the NIC is free.
    func ensureBridge(_ record: SwitchRecord) async {
        guard !HostNetwork.exists(record.bridge), !record.interface.isEmpty, HostNetwork.exists(record.interface),
              HostNetwork.master(of: record.interface) == nil else { return }
        do {
            try await HostNetwork.createBridge(record.bridge, around: record.interface)
            logger.notice("made the bridge \(record.bridge) around \(record.interface) again for the switch \(record.name)")
        } catch {
            logger.error("cannot make the bridge \(record.bridge) of the switch \(record.name): \(error)")
        }
    }

    /// Puts the taps of running VMs' adapters on `name` back into its bridge: libvirt leaves
    /// them out when the network was destroyed while they were attached.
    func replug(name: String) async {
        guard let record = switches.record(named: name) else { return }
        if record.managedBridge { await ensureBridge(record) }
        guard record.active, !record.bridge.isEmpty else { return }
        let bridge = record.bridge
        // The VMs whose definition has an adapter on it: one XML read each, not one per VM.
        let running = vms.records().filter { record in
            record.state.isActive && record.configuration.networkAdapters.contains { $0.network == name }
        }.map(\.uuid)
        for uuid in running {
            do {
                let taps = try await link.run { connection -> [String] in
                    let editor = try DomainEditor(xml: try connection.domain(uuid: uuid).xml())
                    return editor.liveInterfaces.compactMap { $0.network == name ? $0.tap : nil }
                }
                for tap in taps where HostNetwork.master(of: tap) != bridge {
                    try await BlockingIO.run { try HostNetwork.plug(tap: tap, into: bridge) }
                    logger.notice("re-plugged \(tap) of VM \(uuid) into \(bridge): the switch \(name) started again")
                }
            } catch {
                logger.warning("cannot re-plug the adapters of VM \(uuid) into the switch \(name): \(error)")
            }
        }
    }
}

/// Subscribes to network events, then lists every network, on every new connection.
struct SwitchWatcher: ConnectionWatcher {
    let monitor: SwitchMonitor

    func attach(_ connection: LibvirtConnection) async throws -> [any Sendable] {
        let registration = try monitor.watchEvents(connection)
        try await monitor.synchronize(connection)
        return [registration]
    }
}
