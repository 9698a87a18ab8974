/// `Host.CheckHealth`'s rules, Hyper-V's Best Practices Analyzer for a Linux host: each rule
/// looks at facts gathered beforehand (`HealthFacts`) and, when the host does not comply, says
/// what is wrong and what to do. Rule ids are stable (scripts match on them); a compliant rule
/// reports nothing, so a healthy host answers an empty list.
public enum HealthRules {
    public enum Severity: String, Sendable, Comparable {
        case error = "Error", warning = "Warning", information = "Information"

        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    public struct Finding: Sendable, Equatable {
        public var rule: String
        public var severity: Severity
        public var message: String

        public init(_ rule: String, _ severity: Severity, _ message: String) {
            self.rule = rule
            self.severity = severity
            self.message = message
        }
    }

    /// Every rule id, with what it checks (for `vmmsctl health --rules` and the README).
    public static let catalogue: [(id: String, checks: String)] = [
        ("vmms.libvirt-reachable", "libvirtd answers the service"),
        ("vmms.kvm-available", "guests run with KVM, not software emulation"),
        ("vmms.polkitd-running", "polkitd is on the system bus to decide on callers other than root"),
        ("vmms.ovmf-installed", "UEFI firmware for generation 2 VMs (and Secure Boot) is installed"),
        ("vmms.storage-path", "VirtualMachinePath and VirtualHardDiskPath exist, are directories and writable"),
        ("vmms.disk-space", "the file systems holding disks have room for dynamically expanding disks to grow, and 1 GiB free"),
        ("vmms.missing-disks", "every VM's disk image exists"),
        ("vmms.paused-vms", "no VM is left paused"),
        ("vmms.checkpoints", "VMs carrying checkpoints (they slow disks down and grow)"),
        ("vmms.memory-overcommit", "the running VMs' memory fits in the host's"),
        ("vmms.switch-bridge", "every active switch has its bridge, an External switch its NIC, and switches VMs use are active"),
        ("vmms.san-active", "every SAN's target answers"),
        ("vmms.dnsmasq-installed", "dnsmasq is installed for Internal and NAT switches"),
        ("vmms.admin-group", "the vmms-admins group (Hyper-V Administrators) exists"),
        ("vmms.service-enabled", "the service starts at boot"),
    ]

    public static func evaluate(_ facts: HealthFacts) -> [Finding] {
        var findings: [Finding] = []
        func add(_ rule: String, _ severity: Severity, _ message: String) { findings.append(Finding(rule, severity, message)) }

        if !facts.libvirtConnected {
            add("vmms.libvirt-reachable", .error, """
                libvirt at \(facts.connectionURI) does not answer, so no VM can be managed and what is shown may be \
                out of date. Start it: systemctl start libvirtd (journalctl -u libvirtd -b says why it stopped); \
                vmms reconnects by itself.
                """)
        }
        if facts.hypervisor == "qemu" {
            add("vmms.kvm-available", .warning, facts.kvmDevice
                ? "VMs run under software emulation (TCG), many times slower, although /dev/kvm exists: the accelerator setting (--accelerator / accelerator= in vmmsd.conf) says tcg, or libvirt cannot use KVM (virt-host-validate qemu says why)."
                : "VMs run under software emulation (TCG), many times slower: /dev/kvm is missing. Enable virtualization (VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd (modprobe kvm_intel).")
        }
        if facts.polkitdRunning == false {
            add("vmms.polkitd-running", .error, """
                polkitd is not on the system bus, so every caller other than root is refused. \
                Start it: systemctl start polkit (apt install polkitd if it is missing).
                """)
        }
        if facts.hypervisor != "test", !facts.ovmfInstalled {
            add("vmms.ovmf-installed", .warning, "No UEFI firmware is installed: generation 2 VMs cannot be created or started. Install it: apt install ovmf.")
        }
        for path in facts.storagePaths {
            if !path.exists {
                add("vmms.storage-path", .error, "\(path.property) \(path.path) does not exist: new VMs and disks cannot be created there. Create it (mkdir -p \(path.path)) or set another path (vmmsctl host set).")
            } else if !path.isDirectory {
                add("vmms.storage-path", .error, "\(path.property) \(path.path) is not a directory. Set a directory (vmmsctl host set).")
            } else if !path.writable {
                add("vmms.storage-path", .error, "\(path.property) \(path.path) is not writable (read-only file system?). Remount it read-write or set another path (vmmsctl host set).")
            }
        }
        for fs in facts.fileSystems {
            if fs.potentialGrowthBytes > fs.freeBytes {
                add("vmms.disk-space", .warning, """
                    The dynamically expanding disks on the file system of \(fs.mountPoint) may still grow by \
                    \(Bytes.text(fs.potentialGrowthBytes)), more than its \(Bytes.text(fs.freeBytes)) free: a guest that fills its disk \
                    is paused when the host runs out of space. Free space, or move disks elsewhere (vmmsctl move).
                    """)
            } else if fs.freeBytes < HealthFacts.lowFreeSpace {
                add("vmms.disk-space", .warning, "Only \(Bytes.text(fs.freeBytes)) are free on the file system of \(fs.mountPoint). Free space there.")
            }
        }
        if !facts.missingDisks.isEmpty {
            let list = facts.missingDisks.map { "\($0.vm): \($0.path)" }.joined(separator: "; ")
            add("vmms.missing-disks", .error, "Disk images of VMs are missing, so these VMs cannot start: \(list). Restore the files, or remove the disks (vmmsctl disk remove).")
        }
        if !facts.pausedVMs.isEmpty {
            add("vmms.paused-vms", .warning, "This server has virtual machines in a paused state: \(facts.pausedVMs.joined(separator: ", ")). A paused VM holds its memory and serves nothing: resume it (vmmsctl resume) or save it (vmmsctl stop --save).")
        }
        if !facts.vmsWithCheckpoints.isEmpty {
            add("vmms.checkpoints", .information, "Virtual machines with checkpoints were found: \(facts.vmsWithCheckpoints.joined(separator: ", ")). Checkpoints slow disk writes and keep growing; delete the ones no longer needed (vmmsctl checkpoint delete).")
        }
        if facts.hostMemoryBytes > 0, facts.runningMemoryBytes > facts.hostMemoryBytes {
            add("vmms.memory-overcommit", .warning, "The running VMs were given \(Bytes.text(facts.runningMemoryBytes)) of memory, more than the host's \(Bytes.text(facts.hostMemoryBytes)): the host will swap or kill guests. Lower their memory (vmmsctl set-memory) or stop some.")
        }
        for sw in facts.switches {
            if sw.active, !sw.bridge.isEmpty, !sw.bridgeExists {
                add("vmms.switch-bridge", .error, "Switch \(sw.name) is active but its bridge \(sw.bridge) is missing on the host: its VMs have no network. Restart the switch (virsh net-destroy \(sw.network); virsh net-start \(sw.network)).")
            }
            if !sw.interface.isEmpty, !sw.interfaceExists {
                add("vmms.switch-bridge", .error, "External switch \(sw.name) is bound to the network adapter \(sw.interface), which the host does not have. Delete the switch and create it on an existing adapter (ip link shows them).")
            }
            if !sw.active, !sw.usedBy.isEmpty {
                add("vmms.switch-bridge", .warning, "Switch \(sw.name) is not active, so \(sw.usedBy.joined(separator: ", ")) cannot start or have no network. Start it: virsh net-start \(sw.network).")
            }
        }
        for san in facts.sans where !san.active {
            add("vmms.san-active", .warning, "SAN \(san.name) (\(san.detail)) is not active, so VMs with its LUNs as disks cannot start and its LUNs cannot be attached. Check that the target runs, listens on its portal and allows this host, then call Refresh on \(san.path) (vmms also retries every 30 s).")
        }
        if facts.needsDnsmasq, !facts.dnsmasqInstalled {
            add("vmms.dnsmasq-installed", .warning, "dnsmasq is not installed, so Internal and NAT switches cannot start (libvirt runs it for their DHCP). Install it: apt install dnsmasq-base.")
        }
        if facts.adminGroupExists == false {
            add("vmms.admin-group", .warning, "The group vmms-admins does not exist, so nobody but root and sudo members can manage VMs. Create it: systemd-sysusers (or groupadd --system vmms-admins), then usermod -aG vmms-admins USER.")
        }
        if facts.serviceEnabled == false {
            add("vmms.service-enabled", .warning, "The service is not configured to start automatically: VMs set to start with the host (Autostart) wait until someone calls it. Enable it: systemctl enable vmms.")
        }
        return findings.sorted { $0.severity < $1.severity }
    }
}

/// What `HealthRules` judge, gathered by the service (file systems, processes, the published
/// objects) so that the rules themselves touch nothing.
public struct HealthFacts: Sendable {
    public static let lowFreeSpace: UInt64 = 1 << 30

    public struct StoragePath: Sendable, Equatable {
        public var property: String, path: String
        public var exists: Bool, isDirectory: Bool, writable: Bool
        public init(property: String, path: String, exists: Bool, isDirectory: Bool, writable: Bool) {
            self.property = property; self.path = path; self.exists = exists; self.isDirectory = isDirectory; self.writable = writable
        }
    }

    public struct FileSystem: Sendable, Equatable {
        public var mountPoint: String, freeBytes: UInt64, potentialGrowthBytes: UInt64
        public init(mountPoint: String, freeBytes: UInt64, potentialGrowthBytes: UInt64) {
            self.mountPoint = mountPoint; self.freeBytes = freeBytes; self.potentialGrowthBytes = potentialGrowthBytes
        }
    }

    public struct Switch: Sendable, Equatable {
        public var name: String, network: String, bridge: String, interface: String
        public var active: Bool, bridgeExists: Bool, interfaceExists: Bool
        public var usedBy: [String]
        public init(name: String, network: String, bridge: String, interface: String, active: Bool,
                    bridgeExists: Bool, interfaceExists: Bool, usedBy: [String]) {
            self.name = name; self.network = network; self.bridge = bridge; self.interface = interface
            self.active = active; self.bridgeExists = bridgeExists; self.interfaceExists = interfaceExists; self.usedBy = usedBy
        }
    }

    public struct SAN: Sendable, Equatable {
        public var name: String, path: String, detail: String, active: Bool
        public init(name: String, path: String, detail: String, active: Bool) {
            self.name = name; self.path = path; self.detail = detail; self.active = active
        }
    }

    public var libvirtConnected = true
    public var connectionURI = ""
    /// `kvm`, `qemu` or `test`, as Host.Hypervisor.
    public var hypervisor = "kvm"
    public var kvmDevice = true
    /// nil where polkit is not consulted (session bus).
    public var polkitdRunning: Bool? = true
    public var ovmfInstalled = true
    public var storagePaths: [StoragePath] = []
    public var fileSystems: [FileSystem] = []
    public var missingDisks: [(vm: String, path: String)] = []
    public var pausedVMs: [String] = []
    public var vmsWithCheckpoints: [String] = []
    public var runningMemoryBytes: UInt64 = 0
    public var hostMemoryBytes: UInt64 = 0
    public var switches: [Switch] = []
    public var sans: [SAN] = []
    /// Whether any switch needs DHCP (an Internal or NAT one), or none exists yet.
    public var needsDnsmasq = true
    public var dnsmasqInstalled = true
    /// nil where it cannot be told.
    public var adminGroupExists: Bool? = true
    public var serviceEnabled: Bool? = true

    public init() {}
}

/// Byte counts as administrators read them: binary units, one decimal.
public enum Bytes {
    public static func text(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit == 0 { return "\(bytes) bytes" }
        let tenths = (value * 10).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths)) \(units[unit])" : "\(tenths) \(units[unit])"
    }
}
