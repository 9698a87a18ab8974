import Foundation

/// libvirt domain XML for vmms: building it for new VMs and reading any domain's XML.
public enum DomainXML {
    /// Processor relative weight (Hyper-V: 100 is normal, 0…10000) as libvirt CPU shares:
    /// `shares = weight × 1024 / 100`, so the default weight of 100 is the kernel's default
    /// share of 1024 (cgroup v1 `cpu.shares`), clamped to libvirt's range 2…262144.
    public static func cpuShares(forWeight weight: UInt32) -> UInt64 {
        min(max(UInt64(weight) * 1024 / 100, 2), 262_144)
    }

    /// The inverse of `cpuShares(forWeight:)`, rounded to the nearest weight.
    public static func weight(forCPUShares shares: UInt64) -> UInt32 {
        UInt32(min((shares * 100 + 512) / 1024, 10_000))
    }

    /// The XML of a virtual hard disk on virtio, for new VMs, for attaching and for matching
    /// on detach; a path under `/dev/` is a block device. `<backingStore/>` tells libvirt and
    /// QEMU the image has no backing chain, so a header rewritten later cannot make QEMU open
    /// some other host file.
    public static func diskXML(path: String, format: String, target: String) -> String {
        let e = XMLText.escape
        let block = path.hasPrefix("/dev/")
        return """
        <disk type='\(block ? "block" : "file")' device='disk'><driver name='qemu' type='\(e(format))'/>\
        <source \(block ? "dev" : "file")='\(e(path))'/><backingStore/><target dev='\(e(target))' bus='virtio'/></disk>
        """
    }

    /// The format of an image file by its name (`.qcow2`, `.qcow`: qcow2; anything else raw).
    /// Never probed from the content: a raw image that looks like qcow2 must stay raw.
    public static func imageFormat(_ path: String) -> String {
        path.lowercased().hasSuffix(".qcow2") || path.lowercased().hasSuffix(".qcow") ? "qcow2" : "raw"
    }

    /// The XML of a new VM, ready for `virDomainDefineXML`.
    ///
    /// - `domainType`: `kvm`, `qemu` (TCG) or `test` (libvirt's test driver, for unit tests).
    /// - `diskPath` becomes `vda` on virtio (`diskXML`) with `diskFormat` (default:
    ///   `imageFormat(_:)`, never probed).
    /// - `installMedia` becomes a read-only CD-ROM: `sda` on SATA (q35, generation 2) or `hdc`
    ///   on IDE (pc, generation 1); the boot order is disk, then CD-ROM, so an empty disk
    ///   boots the installer and the installed system boots afterwards.
    ///
    /// Generation 2 uses `<os firmware='efi'>` with firmware features, leaving the choice of
    /// the OVMF image and NVRAM template to libvirt's firmware auto-selection (Debian's
    /// descriptors in /usr/share/qemu/firmware); Secure Boot adds `<smm state='on'/>`, which
    /// the secure-boot OVMF builds require.
    ///
    /// There is no graphics device: vmms manages headless servers, the console is the serial
    /// port (`virsh console`). A VNC server, even bound to 127.0.0.1, would be one more
    /// unauthenticated way into every VM for any local user.
    ///
    /// The same XML works for the test driver: libvirt 9.0's test driver accepts every element
    /// used here (checked with `virsh -c test:///default define`), so nothing is stripped for
    /// `test`; only the `type` attribute differs.
    public static func build(name: String, uuid: String?, settings: VMSettings, domainType: String,
                             diskPath: String?, diskFormat: String?, installMedia: String?,
                             networkAdapter: (mac: String, network: String)? = nil) -> String {
        let e = XMLText.escape
        let gen2 = settings.generation == 2
        let startupKiB = settings.memoryStartupBytes / 1024
        let maximumKiB = settings.effectiveMemoryMaximumBytes / 1024
        var x: [String] = []
        x.append("<domain type='\(e(domainType))'>")
        x.append("  <name>\(e(name))</name>")
        if let uuid { x.append("  <uuid>\(e(uuid))</uuid>") }
        if !settings.notes.isEmpty { x.append("  <description>\(e(settings.notes))</description>") }
        let metadata = VMMetadata(generation: settings.generation, dynamicMemory: settings.dynamicMemory,
                                  memoryMinimumBytes: settings.effectiveMemoryMinimumBytes,
                                  processorReserve: 0, processorMaximum: 100, processorRelativeWeight: 100)
        x.append("  <metadata>")
        x.append(metadata.xml(indent: "    "))
        x.append("  </metadata>")
        x.append("  <memory unit='KiB'>\(maximumKiB)</memory>")
        x.append("  <currentMemory unit='KiB'>\(startupKiB)</currentMemory>")
        x.append("  <vcpu placement='static'>\(settings.processorCount)</vcpu>")
        x.append("  <cputune>")
        x.append("    <shares>\(cpuShares(forWeight: 100))</shares>")
        x.append("  </cputune>")
        if gen2 {
            let sb = settings.secureBoot ? "yes" : "no"
            x.append("  <os firmware='efi'>")
            x.append("    <type arch='x86_64' machine='q35'>hvm</type>")
            x.append("    <firmware>")
            x.append("      <feature enabled='\(sb)' name='secure-boot'/>")
            x.append("      <feature enabled='\(sb)' name='enrolled-keys'/>")
            x.append("    </firmware>")
        } else {
            x.append("  <os>")
            x.append("    <type arch='x86_64' machine='pc'>hvm</type>")
        }
        x.append("    <boot dev='hd'/>")
        if installMedia != nil { x.append("    <boot dev='cdrom'/>") }
        x.append("  </os>")
        x.append("  <features>")
        x.append("    <acpi/>")
        x.append("    <apic/>")
        if gen2 && settings.secureBoot { x.append("    <smm state='on'/>") }
        x.append("  </features>")
        x.append("  <clock offset='utc'/>")
        x.append("  <on_poweroff>destroy</on_poweroff>")
        x.append("  <on_reboot>restart</on_reboot>")
        x.append("  <on_crash>destroy</on_crash>")
        x.append("  <devices>")
        if let diskPath {
            x.append("    " + diskXML(path: diskPath, format: diskFormat ?? imageFormat(diskPath), target: "vda"))
        }
        if let installMedia {
            x.append("    <disk type='file' device='cdrom'>")
            x.append("      <driver name='qemu' type='raw'/>")
            x.append("      <source file='\(e(installMedia))'/>")
            x.append(gen2 ? "      <target dev='sda' bus='sata'/>" : "      <target dev='hdc' bus='ide'/>")
            x.append("      <readonly/>")
            x.append("    </disk>")
        }
        if let networkAdapter { x.append("    " + interfaceXML(mac: networkAdapter.mac, network: networkAdapter.network)) }
        x.append("    <serial type='pty'/>")
        x.append("    <console type='pty'/>")
        x.append("    <memballoon model='virtio'/>")
        x.append("  </devices>")
        x.append("</domain>")
        return x.joined(separator: "\n") + "\n"
    }
}
