import Foundation

/// The folder Export writes, as Hyper-V's Export-VM lays it out:
///
/// ```
/// <directory>/<VM name>/
///     Virtual Machines/<UUID>.xml      the definition (disk sources point at the copies below)
///     Virtual Machines/<UUID>.json     this manifest: which file is which
///     Virtual Machines/<UUID>.nvram    the UEFI variables (generation 2, if the VM has them)
///     Virtual Machines/<UUID>.vmrs     the memory image of a Saved VM
///     Virtual Hard Disks/<file>        sparse copies of the disks and, with checkpoints, of every
///                                      image of their chains (overlays name their backing file
///                                      by its bare name: relative, so the folder can move)
///     Snapshots/checkpoints.json       the checkpoint tree (`CheckpointTree`), paths relative
///                                      to the export folder
///     Snapshots/<id>.nvram, <id>.mem   each checkpoint's NVRAM copy and memory image
/// ```
///
/// With checkpoints, the manifest's disks are "Now"'s images (the tops of the chains). A
/// running VM's "Now" is taken by libvirt's backup as one whole image (its checkpoints'
/// frozen images are copied as they are).
public enum ExportLayout {
    public static let machines = "Virtual Machines"
    public static let disks = "Virtual Hard Disks"
    public static let snapshots = "Snapshots"
    public static let format = "vmms-export-1"
}

/// What an export holds, written beside the definition. Every file is named relative to the
/// export's root folder, so the folder can be moved or copied elsewhere and imported there.
public struct ExportManifest: Codable, Sendable, Equatable {
    public struct Disk: Codable, Sendable, Equatable {
        /// The disk's target in the definition (`vda`).
        public var target: String
        /// Relative to the export root (`Virtual Hard Disks/web.qcow2`).
        public var file: String
        public var format: String
        public init(target: String, file: String, format: String) {
            self.target = target
            self.file = file
            self.format = format
        }
    }

    public var format: String
    public var name: String
    public var uuid: String
    /// The VM's state when it was exported (`Off`, `Saved`, `Running`).
    public var state: String
    /// Unix seconds.
    public var exportedAt: UInt64
    public var definition: String
    public var disks: [Disk]
    public var nvram: String?
    public var savedState: String?
    /// The checkpoint tree (`Snapshots/checkpoints.json`); nil when the VM had none.
    public var checkpoints: String?

    public init(name: String, uuid: String, state: String, exportedAt: UInt64, definition: String, disks: [Disk],
                nvram: String?, savedState: String?, checkpoints: String? = nil) {
        format = ExportLayout.format
        self.name = name
        self.uuid = uuid
        self.state = state
        self.exportedAt = exportedAt
        self.definition = definition
        self.disks = disks
        self.nvram = nvram
        self.savedState = savedState
        self.checkpoints = checkpoints
    }

    /// The problem with a manifest read from a folder, nil when it can be imported: every
    /// file must be a plain relative name inside the export (no `..`, no absolute path), so
    /// an export cannot make the service read or register files elsewhere.
    public var problem: String? {
        guard format == ExportLayout.format else { return "its format is \(format), not \(ExportLayout.format)" }
        if let problem = VMNameRule.validate(name) { return "its VM name is invalid: \(problem)" }
        let files = [definition] + disks.map(\.file) + [nvram, savedState, checkpoints].compactMap { $0 }
        for file in files where !Self.isInside(file) { return "it names the file \(file), which is not inside the export" }
        for disk in disks where disk.target.isEmpty || disk.target.contains("/") { return "it names the disk target \(disk.target)" }
        if Set(disks.map(\.target)).count != disks.count { return "it lists a disk target twice" }
        return nil
    }

    public static func isInside(_ relative: String) -> Bool {
        guard !relative.isEmpty, !relative.hasPrefix("/"), !relative.utf8.contains(0) else { return false }
        return !relative.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == ".." || $0 == "." || $0.isEmpty }
    }
}

/// The files a domain definition uses and the rewrites Export, Import and Move make.
public struct DomainFiles {
    private let domain: XMLTreeElement

    public init(xml: String) throws(DomainXMLError) {
        domain = try DomainXML.document(xml, what: "domain XML")
        guard domain.name == "domain" else { throw DomainXMLError("the XML is not a libvirt domain: the root element is not <domain>") }
    }

    public var xml: String { domain.xmlString }

    public var name: String? { domain.element(named: "name")?.stringValue }
    public var uuid: String? { domain.element(named: "uuid")?.stringValue.lowercased() }

    private var diskElements: [XMLTreeElement] { domain.element(named: "devices")?.elements(named: "disk") ?? [] }

    /// Every file-backed hard disk: target → (source path, format).
    public var hardDisks: [(target: String, path: String, format: String)] {
        diskElements.compactMap { disk in
            guard (disk.attribute("device") ?? "disk") == "disk", (disk.attribute("type") ?? "file") == "file",
                  let path = disk.element(named: "source")?.attribute("file"),
                  let target = disk.element(named: "target")?.attribute("dev") else { return nil }
            return (target, path, disk.element(named: "driver")?.attribute("type") ?? "raw")
        }
    }

    /// Disks and CD-ROMs with a source that is not a file-backed hard disk (block devices,
    /// network disks, ISO images): what an import cannot copy.
    public var otherDiskSources: [String] {
        diskElements.compactMap { disk -> String? in
            let isFileDisk = (disk.attribute("device") ?? "disk") == "disk" && (disk.attribute("type") ?? "file") == "file"
            guard !isFileDisk, let source = disk.element(named: "source") else { return nil }
            return source.attribute("file") ?? source.attribute("dev") ?? source.attribute("name") ?? source.attribute("volume")
        }
    }

    /// The targets of every disk that is not a file-backed hard disk (CD-ROMs, block devices).
    public var otherDiskTargets: [String] {
        diskElements.compactMap { disk -> String? in
            let isFileDisk = (disk.attribute("device") ?? "disk") == "disk" && (disk.attribute("type") ?? "file") == "file"
                && disk.element(named: "source")?.attribute("file") != nil
            return isFileDisk ? nil : disk.element(named: "target")?.attribute("dev")
        }
    }

    /// Block copies in flight in a live definition: the disk's target and the copy's file.
    public var mirrors: [(target: String, path: String)] {
        diskElements.compactMap { disk in
            guard let mirror = disk.element(named: "mirror"), let target = disk.element(named: "target")?.attribute("dev"),
                  let path = mirror.attribute("file") ?? mirror.element(named: "source")?.attribute("file") else { return nil }
            return (target, path)
        }
    }

    /// The NVRAM file (`<os><nvram>`), if the definition names one.
    public var nvram: String? {
        let text = domain.element(named: "os")?.element(named: "nvram")?.stringValue.trimmingCharacters(in: .whitespacesAndNewlines)
        return text?.isEmpty == false ? text : nil
    }

    /// UEFI firmware (`<os firmware='efi'>` or a pflash loader): the VM has an NVRAM file,
    /// named in the definition or (firmware auto-selection) at libvirt's default place.
    public var usesUEFI: Bool {
        guard let os = domain.element(named: "os") else { return false }
        return os.attribute("firmware") == "efi" || os.element(named: "loader")?.attribute("type") == "pflash"
    }

    /// Every host file the definition refers to: disk and CD-ROM sources, NVRAM, loader.
    public var allPaths: [String] {
        var paths = diskElements.compactMap { $0.element(named: "source")?.attribute("file") ?? $0.element(named: "source")?.attribute("dev") }
        if let nvram { paths.append(nvram) }
        return paths
    }

    /// What in the definition reaches host resources beyond its disks, which only root may
    /// import (an export is a file a caller hands in, like a disk path): host devices and
    /// folders, explicit firmware files, character devices on host files or sockets, network
    /// adapters other than on a switch or bridge, QEMU command-line passthrough. Empty when
    /// there is nothing.
    public var hostResources: [String] {
        var found: [String] = []
        func walk(_ element: XMLTreeElement) {
            if element.prefix != nil, element.localName == "commandline" || element.localName == "capabilities" {
                found.append("<\(element.name)>")
            }
            for child in element.elements { walk(child) }
        }
        walk(domain)
        if domain.element(named: "os")?.element(named: "loader") != nil { found.append("<loader>") }
        if domain.element(named: "os")?.element(named: "kernel") != nil { found.append("<kernel>") }
        guard let devices = domain.element(named: "devices") else { return found }
        for device in devices.elements {
            switch device.name {
            case "hostdev", "filesystem", "smartcard", "redirdev", "shmem", "tpm":
                found.append("<\(device.name)>")
            case "interface" where !["network", "bridge"].contains(device.attribute("type") ?? ""):
                found.append("<interface type='\(device.attribute("type") ?? "")'>")
            case "serial", "console", "parallel", "channel":
                let type = device.attribute("type") ?? "pty"
                if !["pty", "spicevmc", "qemu-vdagent"].contains(type) { found.append("<\(device.name) type='\(type)'>") }
            default:
                break
            }
        }
        return found
    }

    /// The libvirt networks (switches) the network adapters are on.
    public var networks: [String] {
        (domain.element(named: "devices")?.elements(named: "interface") ?? []).compactMap { interface in
            guard interface.attribute("type") == "network" else { return nil }
            return interface.element(named: "source")?.attribute("network")
        }
    }

    /// Points the hard disk at `target` to `path`; its backing chain is declared empty
    /// (`<backingStore/>`): libvirt trusts a `<backingStore>` over the image header, so a
    /// copied definition would otherwise open the original's base image.
    public func setDiskSource(target: String, path: String) {
        for disk in diskElements where disk.element(named: "target")?.attribute("dev") == target {
            disk.element(named: "source")?.setAttribute("file", path)
            for old in disk.elements(named: "backingStore") { old.detach() }
            let source = disk.element(named: "source")
            disk.add(XMLTreeElement(name: "backingStore"), after: source)
        }
    }

    /// Sets (nil: removes) the NVRAM file, keeping its template.
    public func setNVRAM(_ path: String?) {
        guard let os = domain.element(named: "os") else { return }
        if let path {
            (os.element(named: "nvram") ?? os.add(XMLTreeElement(name: "nvram"))).stringValue = path
        } else {
            os.element(named: "nvram")?.detach()
        }
    }

    /// Drops `<emulator>`: libvirt fills in this host's QEMU (the exporting host's path may
    /// not exist here, and an export must not name a program for the service to run).
    public func dropEmulator() {
        domain.element(named: "devices")?.element(named: "emulator")?.detach()
    }

    public func setName(_ name: String) {
        (domain.element(named: "name") ?? domain.add(XMLTreeElement(name: "name"), atStart: true)).stringValue = name
    }

    /// The MAC address of each network interface, in order (nil where none is set).
    public var macs: [String?] {
        (domain.element(named: "devices")?.elements(named: "interface") ?? []).map { $0.element(named: "mac")?.attribute("address") }
    }

    /// Sets the MAC address of each network interface, in order (as `macs` gave them).
    public func setMACs(_ macs: [String?]) {
        for (interface, mac) in zip(domain.element(named: "devices")?.elements(named: "interface") ?? [], macs) {
            interface.element(named: "mac")?.detach()
            if let mac { interface.add(XMLTreeElement(name: "mac", attributes: [("address", mac)]), atStart: true) }
        }
    }

    /// A new identity: the given UUID, and no MAC addresses (libvirt makes new ones), so the
    /// copy can run beside the original.
    public func setNewIdentity(uuid: String) {
        (domain.element(named: "uuid") ?? domain.add(XMLTreeElement(name: "uuid"), after: domain.element(named: "name"))).stringValue = uuid
        for interface in domain.element(named: "devices")?.elements(named: "interface") ?? [] {
            interface.element(named: "mac")?.detach()
        }
    }
}
