/// libvirt XML for SANs: the pools behind them, and the disks that attach their LUNs.
public enum SANXML {
    /// What a storage pool's XML says about it as a SAN; nil from `describe` when the pool is
    /// of no SAN type (directory pools, LVM, …).
    public struct PoolDescription: Sendable, Equatable {
        public var poolType: String
        public var type: SANType
        /// iSCSI: the portal's host and port.
        public var host: String
        public var port: UInt16
        /// iSCSI: the target IQN.
        public var target: String
        public var initiator: String
        /// Fibre Channel: the adapter's parent HBA (may be empty) and names.
        public var parent: String
        public var wwnn: String
        public var wwpn: String

        /// `host:port` for iSCSI, the parent HBA for Fibre Channel.
        public var portal: String {
            type == .iSCSI ? SANAddress.Portal(host: host, port: port).description : parent
        }

        /// The target IQN for iSCSI, `WWNN:WWPN` for Fibre Channel.
        public var targetName: String { type == .iSCSI ? target : "\(wwnn):\(wwpn)" }
    }

    /// The pool's SAN facts, or nil when it is no SAN: `iscsi-direct` and `iscsi` pools are
    /// iSCSI SANs, `scsi` pools on an `fc_host` adapter (a vHBA) Fibre Channel ones.
    public static func describe(poolXML xml: String) -> PoolDescription? {
        guard let pool = try? XMLTreeElement.parse(xml), pool.name == "pool", let type = pool.attribute("type") else { return nil }
        let source = pool.element(named: "source")
        switch type {
        case "iscsi-direct", "iscsi":
            let host = source?.element(named: "host")
            return PoolDescription(poolType: type, type: .iSCSI, host: host?.attribute("name") ?? "",
                                   port: host?.attribute("port").flatMap { UInt16($0) } ?? SANAddress.defaultISCSIPort,
                                   target: source?.element(named: "device")?.attribute("path") ?? "",
                                   initiator: source?.element(named: "initiator")?.element(named: "iqn")?.attribute("name") ?? "",
                                   parent: "", wwnn: "", wwpn: "")
        case "scsi":
            guard let adapter = source?.element(named: "adapter"), adapter.attribute("type") == "fc_host" else { return nil }
            return PoolDescription(poolType: type, type: .fibreChannel, host: "", port: 0, target: "", initiator: "",
                                   parent: adapter.attribute("parent") ?? "", wwnn: adapter.attribute("wwnn") ?? "",
                                   wwpn: adapter.attribute("wwpn") ?? "")
        default:
            return nil
        }
    }

    /// An `iscsi-direct` pool: libvirt logs in with libiscsi as `initiator`, so the host needs
    /// no kernel initiator (iscsiadm, iscsi_tcp).
    public static func iSCSIPool(name: String, uuid: String, portal: SANAddress.Portal, target: String, initiator: String) -> String {
        let e = XMLText.escape
        return """
        <pool type='iscsi-direct'><name>\(e(name))</name><uuid>\(e(uuid))</uuid><source>\
        <host name='\(e(portal.host))' port='\(portal.port)'/><device path='\(e(target))'/>\
        <initiator><iqn name='\(e(initiator))'/></initiator></source></pool>
        """
    }

    /// A `scsi` pool on an NPIV vHBA that libvirt creates when the pool starts and destroys
    /// when it stops (`managed='yes'`); without `parent`, libvirt picks a vport-capable HBA.
    public static func fibreChannelPool(name: String, uuid: String, parent: String?, wwnn: String, wwpn: String) -> String {
        let e = XMLText.escape
        let parentAttribute = parent.map { " parent='\(e($0))'" } ?? ""
        return """
        <pool type='scsi'><name>\(e(name))</name><uuid>\(e(uuid))</uuid><source>\
        <adapter type='fc_host'\(parentAttribute) managed='yes' wwnn='\(e(wwnn))' wwpn='\(e(wwpn))'/></source>\
        <target><path>/dev/disk/by-path</path></target></pool>
        """
    }

    /// The spec `virConnectFindStoragePoolSources` takes to list a portal's targets.
    public static func discoverySpec(portal: SANAddress.Portal, initiator: String) -> String {
        let e = XMLText.escape
        return "<source><host name='\(e(portal.host))' port='\(portal.port)'/><initiator><iqn name='\(e(initiator))'/></initiator></source>"
    }

    /// The target IQNs in a `<sources>` document from `virConnectFindStoragePoolSources`.
    public static func discoveredTargets(_ xml: String) -> [String] {
        guard let sources = try? XMLTreeElement.parse(xml) else { return [] }
        return sources.elements(named: "source").compactMap { $0.element(named: "device")?.attribute("path") }
    }

    /// Where a SAN LUN sits in a VM: its own SCSI target on a virtio-scsi controller.
    public struct SCSIAddress: Sendable, Equatable {
        public var controller: Int
        public var unit: Int
        /// `sda`, `sdb`, …
        public var device: String

        public init(controller: Int, unit: Int, device: String) {
            self.controller = controller
            self.unit = unit
            self.device = device
        }
    }

    /// A disk on one LUN of `san`, at `address`. An iSCSI LUN of a libiscsi pool is a network
    /// disk QEMU logs in to by itself; LUNs of the kernel initiator or a vHBA are block
    /// devices. `shareable`: several VMs may use it at once (a cluster file system's job).
    public static func lunDiskXML(_ lun: SANLUN, of san: SANRecord, address: SCSIAddress, shareable: Bool) -> String {
        let e = XMLText.escape
        let source: String
        if san.poolType == "iscsi-direct", let number = SANAddress.lunNumber(ofVolume: lun.name),
           let portal = try? SANAddress.portal(san.portal) {
            let initiator = san.initiator.isEmpty ? "" : "<initiator><iqn name='\(e(san.initiator))'/></initiator>"
            source = "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='iscsi' name='\(e(san.target))/\(number)'>"
                + "<host name='\(e(portal.host))' port='\(portal.port)'/>\(initiator)</source>"
        } else {
            source = "<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='\(e(lun.source))'/>"
        }
        return source + "<target dev='\(address.device)' bus='scsi'/>\(shareable ? "<shareable/>" : "")"
            + "<address type='drive' controller='\(address.controller)' bus='0' target='0' unit='\(address.unit)'/></disk>"
    }

    /// `iscsi://host:port/IQN/LUN` of a `<disk type='network'>` `<source protocol='iscsi'>`
    /// element (what `SANLUN.source` says for it), nil for other sources.
    static func networkDiskPath(_ source: XMLTreeElement?) -> String? {
        guard let source, source.attribute("protocol") == "iscsi", let name = source.attribute("name"), !name.isEmpty else { return nil }
        let host = source.element(named: "host")
        let portal = SANAddress.Portal(host: host?.attribute("name") ?? "localhost",
                                       port: host?.attribute("port").flatMap { UInt16($0) } ?? SANAddress.defaultISCSIPort)
        return "iscsi://\(portal)/\(name)"
    }

    /// `sources` (`iscsi://…`) of a VM's disks that are shareable, from its domain XML.
    public static func shareableDiskPaths(domainXML xml: String) -> Set<String> {
        guard let domain = try? XMLTreeElement.parse(xml) else { return [] }
        var paths: Set<String> = []
        for disk in domain.element(named: "devices")?.elements(named: "disk") ?? [] where disk.element(named: "shareable") != nil {
            let source = disk.element(named: "source")
            if let path = networkDiskPath(source) ?? source?.attribute("dev") ?? source?.attribute("file") { paths.insert(path) }
        }
        return paths
    }

    /// The domain XML with `diskXML` added on a virtio-scsi controller (one is added when the
    /// domain has none), and where it went; `used` are targets taken elsewhere (the live VM).
    public static func addingLUNDisk(to xml: String, used: Set<String>,
                                     disk: (SCSIAddress) -> String) throws(DomainXMLError) -> (xml: String, address: SCSIAddress, addedController: Int?) {
        let domain = try DomainXML.document(xml, what: "domain XML")
        let devices = domain.element(named: "devices") ?? domain.add(XMLTreeElement(name: "devices"))
        let controllers = devices.elements(named: "controller").filter { $0.attribute("type") == "scsi" }
        var addedController: Int?
        let controller: Int
        if let existing = controllers.first(where: { $0.attribute("model") == "virtio-scsi" }),
           let index = existing.attribute("index").flatMap({ Int($0) }) {
            controller = index
        } else {
            controller = (controllers.compactMap { $0.attribute("index").flatMap { Int($0) } }.max() ?? -1) + 1
            let element = XMLTreeElement(name: "controller", attributes: [("type", "scsi"), ("index", String(controller)), ("model", "virtio-scsi")])
            devices.add(element, after: devices.elements(named: "controller").last ?? devices.elements(named: "disk").last, atStart: true)
            addedController = controller
        }
        let disks = devices.elements(named: "disk")
        let targets = used.union(disks.compactMap { $0.element(named: "target")?.attribute("dev") })
        let units = Set(disks.compactMap { disk -> Int? in
            guard let address = disk.element(named: "address"), address.attribute("type") == "drive",
                  address.attribute("controller").flatMap({ Int($0) }) == controller else { return nil }
            return address.attribute("unit").flatMap { Int($0) }
        })
        guard let device = "abcdefghijklmnopqrstuvwxyz".map({ "sd\($0)" }).first(where: { !targets.contains($0) }),
              let unit = (0..<256).first(where: { !units.contains($0) }) else {
            throw DomainXMLError("the VM has no free SCSI disk slot; remove a disk first")
        }
        let address = SCSIAddress(controller: controller, unit: unit, device: device)
        devices.add(try XMLTreeElement.parse(disk(address)), after: disks.last, atStart: true)
        return (domain.xmlString, address, addedController)
    }

    /// Whether a domain XML has a virtio-scsi controller with this index.
    public static func hasVirtioSCSIController(domainXML xml: String, index: Int) -> Bool {
        guard let domain = try? XMLTreeElement.parse(xml) else { return false }
        return (domain.element(named: "devices")?.elements(named: "controller") ?? []).contains {
            $0.attribute("type") == "scsi" && $0.attribute("model") == "virtio-scsi" && $0.attribute("index") == String(index)
        }
    }

    /// The live XML of a virtio-scsi controller, for hot-plugging it before a LUN.
    public static func controllerXML(index: Int) -> String {
        "<controller type='scsi' index='\(index)' model='virtio-scsi'/>"
    }
}
