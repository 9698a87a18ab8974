import DBus
import Foundation
import Spawn
import TestSupport
import Testing

/// Switches and network adapters on the real stack: busctl and gdbus as clients, libvirt's
/// network driver with dnsmasq, QEMU guests under TCG. Network safety: nothing is sent from
/// the host; DHCP runs between the switch's dnsmasq and a namespace the test made on a veth
/// in the switch's bridge, and everything the test made is removed again, also when it fails.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct SwitchTests {
    static let host = "/org/example/VMMS1/Host"
    static let hostInterface = "org.example.VMMS1.Host"
    static let switchInterface = "org.example.VMMS1.Switch"
    static let vmInterface = "org.example.VMMS1.VM"
    static let error = "org.example.VMMS1.Error."

    // MARK: Clients

    /// busctl as `user`; every reply parsed from busctl's text form.
    struct Busctl {
        var user = "root"

        func call(_ path: String, _ interface: String, _ method: String, _ signature: String = "", _ args: [String] = []) async throws -> String {
            let result = try await busctl(as: user, ["--timeout=120", "call", "org.example.VMMS1", path, interface, method]
                                                    + (signature.isEmpty ? [] : [signature] + args))
            guard result.status == 0 else { throw TestFailure("busctl \(method) \(args) as \(user): \(result.stderr)") }
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func get(_ path: String, _ interface: String, _ property: String) async throws -> String {
            let result = try await busctl(as: user, ["get-property", "org.example.VMMS1", path, interface, property])
            guard result.status == 0 else { throw TestFailure("busctl get-property \(property) of \(path): \(result.stderr)") }
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// `CreateSwitch` with string options; returns the switch path.
        func createSwitch(_ name: String, _ type: String, _ options: [String: String] = [:]) async throws -> String {
            var args = [name, type, String(options.count)]
            for (key, value) in options.sorted(by: { $0.key < $1.key }) { args += [key, "s", value] }
            return SwitchTests.quoted(try await call(SwitchTests.host, SwitchTests.hostInterface, "CreateSwitch", "ssa{sv}", args)).first ?? ""
        }

        func createVM(_ name: String, generation: UInt32 = 1, switchPath: String? = nil) async throws -> String {
            var settings = [("Generation", "u", String(generation)), ("MemoryStartupBytes", "t", "67108864")]
            if generation == 2 { settings.append(("SecureBoot", "b", "false")) }
            if let switchPath { settings.append(("Switch", "o", switchPath)) }
            let args = [name, String(settings.count)] + settings.flatMap { [$0.0, $0.1, $0.2] }
            return SwitchTests.quoted(try await call(SwitchTests.host, SwitchTests.hostInterface, "CreateVM", "sa{sv}", args)).first ?? ""
        }

        func switchProperty(_ path: String, _ name: String) async throws -> String {
            try await get(path, SwitchTests.switchInterface, name)
        }

        /// (MAC, switch path) of every adapter.
        func adapters(_ vm: String) async throws -> [(mac: String, path: String)] {
            let values = SwitchTests.quoted(try await get(vm, SwitchTests.vmInterface, "NetworkAdapters"))
            return stride(from: 0, to: values.count - 1, by: 2).map { (values[$0], values[$0 + 1]) }
        }

        func addAdapter(_ vm: String, _ switchPath: String) async throws -> String {
            SwitchTests.quoted(try await call(vm, SwitchTests.vmInterface, "AddNetworkAdapter", "o", [switchPath])).first ?? ""
        }
    }

    /// The strings in busctl's output (`o "/path"`, `a(so) 1 "mac" "/path"`).
    static func quoted(_ text: String) -> [String] {
        text.split(separator: "\"", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    /// gdbus, for calls that must fail: it prints the D-Bus error name.
    static let gdbus = GDBus(user: "root")

    static func expectError(_ name: String, _ what: String, _ outcome: GDBus.Outcome, mentioning: String? = nil,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!outcome.ok && outcome.errorName == name, "\(what): \(outcome)", sourceLocation: sourceLocation)
        if let mentioning { #expect(outcome.output.contains(mentioning), "\(what): \(outcome.output)", sourceLocation: sourceLocation) }
    }

    static func createSwitchOutcome(_ name: String, _ type: String, _ options: String = "{}") async throws -> GDBus.Outcome {
        // "--": a name starting with "-" is an argument, not an option of gdbus.
        try await gdbus.call(host, "\(hostInterface).CreateSwitch", ["--", name, type, options])
    }

    // MARK: What the tests make, removed again whatever happens

    /// Records everything a test makes and removes it in `cleanUp`, newest first; restores
    /// `net.ipv4.ip_forward` (a NAT switch turns it on and libvirt never turns it off).
    final class Sandbox: @unchecked Sendable {
        private let lock = NSLock()
        private var undo: [() -> Void] = []
        let ipForward: String

        init() {
            ipForward = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
        }

        func onCleanUp(_ body: @escaping () -> Void) { lock.lock(); undo.append(body); lock.unlock() }

        func network(_ name: String) {
            onCleanUp {
                let xml = (try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "net-dumpxml", name]))?.stdout ?? ""
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "net-destroy", name])
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "net-undefine", name])
                // The bridge vmms made around an External switch's NIC.
                if xml.contains("https://example.org/vmms/switch/1"), let bridge = SwitchTests.quotedAttribute(xml, "bridge name") {
                    _ = try? runCommandSync("/usr/sbin/ip", ["link", "del", "dev", bridge])
                }
            }
        }

        func vm(_ name: String) {
            onCleanUp {
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "destroy", name])
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "undefine", "--nvram", name])
            }
        }

        func link(_ name: String) { onCleanUp { _ = try? runCommandSync("/usr/sbin/ip", ["link", "del", "dev", name]) } }

        func namespace(_ name: String) { onCleanUp { _ = try? runCommandSync("/usr/sbin/ip", ["netns", "del", name]) } }

        func process(_ child: ChildProcess) { onCleanUp { child.signal(SIGTERM); _ = child.wait() } }

        func cleanUp() {
            lock.lock()
            let steps = undo.reversed()
            undo = []
            lock.unlock()
            steps.forEach { $0() }
            try? ipForward.write(toFile: "/proc/sys/net/ipv4/ip_forward", atomically: false, encoding: .utf8)
        }
    }

    static func quotedAttribute(_ xml: String, _ attribute: String) -> String? {
        guard let range = xml.range(of: "<\(attribute)='") else { return nil }
        return String(xml[range.upperBound...].prefix { $0 != "'" })
    }

    static func ip(_ arguments: [String]) async throws -> String {
        let result = try await runCommand("/usr/sbin/ip", arguments)
        guard result.status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(result.stderr)") }
        return result.stdout
    }

    static func linkNames() async throws -> [String] {
        try await ip(["-o", "link", "show"]).split(separator: "\n").compactMap { line in
            line.split(separator: ":").dropFirst().first.map { $0.trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init) ?? "" }
        }.sorted()
    }

    static func networkNames() async throws -> [String] {
        try await virsh(["net-list", "--all", "--name"]).stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.sorted()
    }

    static func master(of link: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/class/net/\(link)/master")).map { ($0 as NSString).lastPathComponent }
    }

    /// A namespace with a veth whose other end is in `bridge` (a fake guest or LAN).
    static func namespace(on bridge: String, _ sandbox: Sandbox) async throws -> (namespace: String, inside: String, mac: String) {
        let tag = String(UUID().uuidString.prefix(6).lowercased())
        let namespace = "vmms-it-\(tag)", outside = "vo\(tag)", inside = "vi\(tag)"
        _ = try await ip(["netns", "add", namespace])
        sandbox.namespace(namespace)
        _ = try await ip(["link", "add", outside, "type", "veth", "peer", "name", inside])
        sandbox.link(outside)
        _ = try await ip(["link", "set", inside, "netns", namespace])
        _ = try await ip(["link", "set", outside, "master", bridge, "up"])
        _ = try await ip(["netns", "exec", namespace, "ip", "link", "set", inside, "up"])
        let mac = try await ip(["netns", "exec", namespace, "cat", "/sys/class/net/\(inside)/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
        return (namespace, inside, mac)
    }

    /// busybox udhcpc in the namespace: discover, request, quit (no address is configured).
    static func dhcpLease(_ namespace: String, _ interface: String) async throws -> String? {
        let result = try await runCommand("/usr/sbin/ip", ["netns", "exec", namespace, "/usr/bin/timeout", "30", "/usr/bin/busybox", "udhcpc",
                                                           "-i", interface, "-n", "-q", "-f", "-t", "6", "-T", "2", "-s", "/bin/true"])
        let text = result.stdout + result.stderr
        guard result.status == 0, let range = text.range(of: "lease of ") else { return nil }
        return String(text[range.upperBound...].prefix { $0 != " " })
    }

    static func waitUntil(_ what: String, seconds: Int = 10, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<(seconds * 20) {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("not within \(seconds) s: \(what)")
    }

    /// A /24 in 10.213.0.0/16 no route of this host and no libvirt network uses.
    static func freeSubnet() async throws -> String {
        let used = try await ip(["-4", "route", "show", "table", "all"]) + (try await virsh(["net-list", "--all", "--name"]).stdout)
        for _ in 0..<50 {
            let third = Int.random(in: 1...250)
            if !used.contains("10.213.\(third).") {
                var clash = false
                for name in try await networkNames() where try await virsh(["net-dumpxml", name]).stdout.contains("10.213.\(third).") { clash = true }
                if !clash { return "10.213.\(third)" }
            }
        }
        throw TestFailure("no free 10.213.x.0/24")
    }

    // MARK: Tests

    /// Runs `body` against a fresh vmmsd on the system bus, with a sandbox cleaned up afterwards.
    static func withService(_ body: (SystemVMMSD, Busctl, Sandbox) async throws -> Void) async throws {
        let sandbox = Sandbox()
        defer { sandbox.cleanUp() }
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            try await body(service, Busctl(), sandbox)
        }
    }

    @Test func privateInternalAndNATSwitchesAreLibvirtNetworksWithDHCPWhereTheyHaveAnAddress() async throws {
        try await Self.withService { service, bus, sandbox in
            let (p, i, n) = (Names.unique("swp"), Names.unique("swi"), Names.unique("swn"))
            [p, i, n].forEach(sandbox.network)
            let internalNet = try await Self.freeSubnet()

            let privatePath = try await bus.createSwitch(p, "Private")
            #expect(privatePath == "/org/example/VMMS1/Switch/" + p.replacingOccurrences(of: "-", with: "_2d"))
            let internalPath = try await bus.createSwitch(i, "Internal", ["Address": "\(internalNet).1/24"])
            let natPath = try await bus.createSwitch(n, "NAT")

            // Private: a bridge, no address, no forwarding.
            #expect(try await bus.switchProperty(privatePath, "Type") == "s \"Private\"")
            #expect(try await bus.switchProperty(privatePath, "Active") == "b true")
            #expect(try await bus.switchProperty(privatePath, "Address") == "s \"\"")
            let privateBridge = try #require(Self.quoted(try await bus.switchProperty(privatePath, "Bridge")).first)
            let privateXML = try await virsh(["net-dumpxml", p]).stdout
            #expect(!privateXML.contains("<ip") && !privateXML.contains("<forward") && privateXML.contains("<bridge name='\(privateBridge)'"), "\(privateXML)")
            #expect(try await Self.ip(["-4", "addr", "show", "dev", privateBridge]).isEmpty, "the host has an address on a Private switch")
            #expect(try await virsh(["net-info", p]).stdout.contains(#/Autostart:\s+yes/#))

            // Internal: the host's address on the bridge, DHCP, no forwarding.
            #expect(try await bus.switchProperty(internalPath, "Address") == "s \"\(internalNet).1/24\"")
            let internalBridge = try #require(Self.quoted(try await bus.switchProperty(internalPath, "Bridge")).first)
            let internalXML = try await virsh(["net-dumpxml", i]).stdout
            #expect(!internalXML.contains("<forward") && internalXML.contains("<range start='\(internalNet).2' end='\(internalNet).254'/>"), "\(internalXML)")
            #expect(try await Self.ip(["-4", "addr", "show", "dev", internalBridge]).contains("\(internalNet).1/24"))

            // NAT: an address chosen where nothing else is, forward mode nat.
            #expect(try await bus.switchProperty(natPath, "Type") == "s \"NAT\"")
            let natAddress = try #require(Self.quoted(try await bus.switchProperty(natPath, "Address")).first)
            #expect(natAddress.hasSuffix(".1/24") && natAddress != "\(internalNet).1/24", "\(natAddress)")
            let natBridge = try #require(Self.quoted(try await bus.switchProperty(natPath, "Bridge")).first)
            #expect(try await virsh(["net-dumpxml", n]).stdout.contains("<forward mode='nat'"))

            let listed = Set(Self.quoted(try await bus.get(Self.host, Self.hostInterface, "Switches")))
            #expect(listed.isSuperset(of: [privatePath, internalPath, natPath]), "\(listed)")
            // libvirt's own network is a switch too.
            if try await Self.networkNames().contains("default") {
                #expect(listed.contains("/org/example/VMMS1/Switch/default"))
            }

            // DHCP: a namespace on the bridge gets a lease from the switch, which libvirt lists.
            for (name, bridge, prefix) in [(i, internalBridge, internalNet + "."), (n, natBridge, String(natAddress.dropLast(5)))] {
                let guest = try await Self.namespace(on: bridge, sandbox)
                let lease = try await Self.dhcpLease(guest.namespace, guest.inside)
                #expect(lease?.hasPrefix(prefix) == true, "no lease in \(prefix)x on \(name): \(String(describing: lease))")
                let leases = try await virsh(["net-dhcp-leases", name]).stdout
                #expect(leases.contains(guest.mac), "\(leases)")
            }

            for (name, path, bridge) in [(p, privatePath, privateBridge), (i, internalPath, internalBridge), (n, natPath, natBridge)] {
                _ = try await bus.call(path, Self.switchInterface, "Delete")
                #expect(!(try await Self.networkNames().contains(name)))
                try await Self.waitUntil("the bridge \(bridge) is gone") { !FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)") }
            }
            let after = Set(Self.quoted(try await bus.get(Self.host, Self.hostInterface, "Switches")))
            #expect(after.isDisjoint(with: [privatePath, internalPath, natPath]))
        }
    }

    /// For each type a VM can plug into (External has its own test): an adapter at create
    /// time, one hot-plugged while running, both in the switch's bridge; Delete refused while
    /// they are there; removal; Delete after.
    @Test(arguments: ["Private", "Internal", "NAT"])
    func adaptersAtCreateAndHotPluggedWhileRunningKeepTheSwitchFromBeingDeleted(type: String) async throws {
        try await Self.withService { service, bus, sandbox in
            let switchName = Names.unique("swa"), vmName = Names.unique("swvm")
            sandbox.network(switchName)
            sandbox.vm(vmName)
            let options = type == "Internal" ? ["Address": "\(try await Self.freeSubnet()).1/24"] : [:]
            let switchPath = try await bus.createSwitch(switchName, type, options)
            #expect(try await bus.switchProperty(switchPath, "Type") == "s \"\(type)\"")
            let bridge = try #require(Self.quoted(try await bus.switchProperty(switchPath, "Bridge")).first)

            let vm = try await bus.createVM(vmName, switchPath: switchPath)
            let first = try await bus.adapters(vm)
            #expect(first.count == 1 && first.first?.path == switchPath, "\(first)")
            let mac1 = try #require(first.first?.mac)
            #expect(mac1.hasPrefix("02:56:4d:"))
            #expect(try await virsh(["dumpxml", "--inactive", vmName]).stdout.contains("<source network='\(switchName)'/>"))

            _ = try await bus.call(vm, Self.vmInterface, "Start")
            let mac2 = try await bus.addAdapter(vm, switchPath)
            #expect(mac2.hasPrefix("02:56:4d:") && mac2 != mac1)
            let live = try await virsh(["domiflist", vmName]).stdout
            #expect(live.contains(mac1) && live.contains(mac2), "\(live)")
            #expect(try await virsh(["dumpxml", "--inactive", vmName]).stdout.contains(mac2), "the hot-plugged adapter is not in the definition")
            let tap = try #require(live.split(separator: "\n").first { $0.contains(mac2) }?.split(separator: " ").first.map(String.init))
            #expect(Self.master(of: tap) == bridge, "\(tap) is not in \(bridge)")
            try await Self.waitUntil("NetworkAdapters lists both") { try await bus.adapters(vm).count == 2 }

            let refused = try await Self.gdbus.call(switchPath, "\(Self.switchInterface).Delete")
            Self.expectError(Self.error + "InvalidState", "Delete while in use", refused, mentioning: vmName)
            #expect(try await Self.networkNames().contains(switchName))

            // A guest without an OS never lets go: Timeout, and the definition keeps the adapter.
            let before = try await virsh(["dumpxml", "--inactive", vmName]).stdout
            let timedOut = try await Self.gdbus.call(vm, "\(Self.vmInterface).RemoveNetworkAdapterWithOptions", [mac2, "{'TimeoutSeconds': <uint32 2>}"])
            Self.expectError(Self.error + "Timeout", "unplug from a guest without an OS", timedOut)
            #expect(try await virsh(["dumpxml", "--inactive", vmName]).stdout == before)
            // Force: gone from the definition, the running guest keeps it until it stops.
            _ = try await bus.call(vm, Self.vmInterface, "RemoveNetworkAdapterWithOptions", "sa{sv}", [mac2, "2", "Force", "b", "true",
                                                                                                  "TimeoutSeconds", "u", "1"])
            #expect(!(try await virsh(["dumpxml", "--inactive", vmName]).stdout.contains(mac2)))
            #expect(try await bus.adapters(vm).map(\.mac) == [mac1])

            _ = try await bus.call(vm, Self.vmInterface, "TurnOff")
            _ = try await bus.call(vm, Self.vmInterface, "RemoveNetworkAdapter", "s", [mac1])
            #expect(try await bus.adapters(vm).isEmpty)
            #expect(!(try await virsh(["dumpxml", "--inactive", vmName]).stdout.contains("<interface")))

            _ = try await bus.call(switchPath, Self.switchInterface, "Delete")
            #expect(!(try await Self.networkNames().contains(switchName)))
            _ = try await bus.call(vm, Self.vmInterface, "Delete", "a{sv}", ["0"])
        }
    }

    @Test func generation2VMsHaveSpareRootPortsForHotPlugAndUnplugWhenTheGuestLetsGo() async throws {
        try await Self.withService { service, bus, sandbox in
            let switchName = Names.unique("sw2"), vmName = Names.unique("sw2vm")
            sandbox.network(switchName)
            sandbox.vm(vmName)
            let switchPath = try await bus.createSwitch(switchName, "Private")
            let vm = try await bus.createVM(vmName, generation: 2)
            // Native PCIe hot-plug (no ACPI), so a guest without an OS releases the device at
            // once (the note's q35 setting): a real unplug and its device-removed event.
            var xml = try await virsh(["dumpxml", "--inactive", vmName]).stdout
            xml = xml.replacingOccurrences(of: "<domain type='qemu'>", with: "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
                .replacingOccurrences(of: "</domain>", with: "<qemu:commandline><qemu:arg value='-global'/><qemu:arg value='ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'/></qemu:commandline></domain>")
            let file = NSTemporaryDirectory() + "vmms-it-\(vmName).xml"
            try xml.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let defined = try await virsh(["define", file])
            #expect(defined.status == 0, "\(defined.stderr)")

            _ = try await bus.call(vm, Self.vmInterface, "Start")
            var macs: [String] = []
            for _ in 0..<3 { macs.append(try await bus.addAdapter(vm, switchPath)) }
            #expect(Set(macs).count == 3)
            let full = try await Self.gdbus.call(vm, "\(Self.vmInterface).AddNetworkAdapter", [switchPath])
            Self.expectError(Self.error + "InvalidState", "a fourth hot-plug", full, mentioning: "turn it off to add an adapter")

            _ = try await bus.call(vm, Self.vmInterface, "RemoveNetworkAdapter", "s", [macs[0]])
            #expect(!(try await virsh(["domiflist", vmName]).stdout.contains(macs[0])), "still in the running guest")
            #expect(!(try await virsh(["dumpxml", "--inactive", vmName]).stdout.contains(macs[0])))
            _ = try await bus.call(vm, Self.vmInterface, "TurnOff")
            _ = try await bus.call(vm, Self.vmInterface, "Delete", "a{sv}", ["0"])
            _ = try await bus.call(switchPath, Self.switchInterface, "Delete")
        }
    }

    @Test func networksMadeAndDestroyedWithVirshShowAsSwitchesAndAdaptersArePluggedBackIn() async throws {
        try await Self.withService { service, bus, sandbox in
            let name = Names.unique("swv"), vmName = Names.unique("swvv")
            sandbox.network(name)
            sandbox.vm(vmName)
            let path = "/org/example/VMMS1/Switch/" + name.replacingOccurrences(of: "-", with: "_2d")
            let file = NSTemporaryDirectory() + "vmms-it-\(name).xml"
            try "<network><name>\(name)</name><bridge stp='off' delay='0'/></network>".write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            func active() async throws -> String? {
                let result = try await busctl(as: "root", ["get-property", "org.example.VMMS1", path, Self.switchInterface, "Active"])
                return result.status == 0 ? result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
            }

            #expect(try await virsh(["net-define", file]).status == 0)
            try await Self.waitUntil("the defined network is a switch, inactive") { try await active() == "b false" }
            #expect(try await bus.switchProperty(path, "Type") == "s \"Private\"")
            // How soon after virsh returns the signal arrives (negative: before it returned).
            let client = try DBusConnection(bus: .system)
            defer { client.close() }
            let changes = try await client.signals(matching: MatchRule(sender: "org.example.VMMS1", path: ObjectPath(path),
                                                                       interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged"))
            let seen = Task { () -> ContinuousClock.Instant? in
                await firstMatch(changes, timeout: .seconds(10)) { $0.body.dropFirst().first?.stringKeyedDictionary?["Active"] == .boolean(true) }
                    .map { _ in ContinuousClock.now }
            }
            #expect(try await virsh(["net-start", name]).status == 0)
            let returned = ContinuousClock.now
            let arrived = await seen.value
            #expect(arrived != nil, "no PropertiesChanged for Active after net-start")
            if let arrived { print("switch latency: PropertiesChanged(Active=true) \(returned.duration(to: arrived)) after virsh net-start returned") }
            try await Self.waitUntil("Active after net-start") { try await active() == "b true" }
            let bridge = try #require(Self.quoted(try await bus.switchProperty(path, "Bridge")).first)

            // A running VM on it; the switch destroyed behind our back and started again.
            let vm = try await bus.createVM(vmName, switchPath: path)
            _ = try await bus.call(vm, Self.vmInterface, "Start")
            let mac = try #require(try await bus.adapters(vm).first?.mac)
            let tap = try #require(try await virsh(["domiflist", vmName]).stdout.split(separator: "\n").first { $0.contains(mac) }?
                .split(separator: " ").first.map(String.init))
            #expect(Self.master(of: tap) == bridge)
            #expect(try await virsh(["net-destroy", name]).status == 0)
            try await Self.waitUntil("Active false after net-destroy") { try await active() == "b false" }
            #expect(try await virsh(["net-start", name]).status == 0)
            try await Self.waitUntil("Active again") { try await active() == "b true" }
            try await Self.waitUntil("\(tap) back in \(bridge)") { Self.master(of: tap) == bridge }
            // The service did it, not libvirt (which leaves orphaned taps out).
            // (It logs just after the plug, so the line may lag the bridge by a moment.)
            try await Self.waitUntil("the service logs that it re-plugged \(tap)") { service.log.contains("re-plugged \(tap)") }

            _ = try await bus.call(vm, Self.vmInterface, "TurnOff")
            _ = try await bus.call(vm, Self.vmInterface, "Delete", "a{sv}", ["0"])
            #expect(try await virsh(["net-destroy", name]).status == 0)
            #expect(try await virsh(["net-undefine", name]).status == 0)
            try await Self.waitUntil("the switch is gone after net-undefine") { try await active() == nil }
            #expect(!Set(Self.quoted(try await bus.get(Self.host, Self.hostInterface, "Switches"))).contains(path))
        }
    }

    /// External: vmms makes a bridge around a "NIC" (a veth whose far end is a LAN in a
    /// namespace, with a DHCP server there); a VM booting from the network on the switch
    /// asks that LAN for a lease, a hot-plugged adapter lands in the same bridge, and Delete
    /// releases the NIC. Macvtap mode makes no bridge.
    @Test func externalSwitchesBridgeAHostNICToTheLAN() async throws {
        try await Self.withService { service, bus, sandbox in
            let (name, macvtap, vmName) = (Names.unique("swe"), Names.unique("swm"), Names.unique("swevm"))
            [name, macvtap].forEach(sandbox.network)
            sandbox.vm(vmName)
            let tag = String(UUID().uuidString.prefix(5).lowercased())
            let (nic, lanEnd, otherNIC, otherPeer, lan) = ("xh\(tag)", "xl\(tag)", "xm\(tag)", "xn\(tag)", "vmms-it-lan-\(tag)")
            let subnet = try await Self.freeSubnet()
            _ = try await Self.ip(["netns", "add", lan])
            sandbox.namespace(lan)
            _ = try await Self.ip(["link", "add", nic, "type", "veth", "peer", "name", lanEnd])
            sandbox.link(nic)
            _ = try await Self.ip(["link", "set", lanEnd, "netns", lan])
            _ = try await Self.ip(["netns", "exec", lan, "ip", "addr", "add", "\(subnet).1/24", "dev", lanEnd])
            _ = try await Self.ip(["netns", "exec", lan, "ip", "link", "set", lanEnd, "up"])
            let log = NSTemporaryDirectory() + "vmms-it-\(lan).log"
            defer { try? FileManager.default.removeItem(atPath: log) }
            let dnsmasq = try ChildProcess("/usr/sbin/ip", ["netns", "exec", lan, "/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null",
                                                            "--port=0", "--interface=\(lanEnd)", "--bind-interfaces", "--user=root",
                                                            "--dhcp-range=\(subnet).10,\(subnet).50,2m", "--log-dhcp",
                                                            "--dhcp-leasefile=\(log).leases", "--pid-file="],
                                           stderrPath: log)
            sandbox.process(dnsmasq)
            defer { try? FileManager.default.removeItem(atPath: log + ".leases") }

            let path = try await bus.createSwitch(name, "External", ["Interface": nic])
            #expect(try await bus.switchProperty(path, "Type") == "s \"External\"")
            #expect(try await bus.switchProperty(path, "Interface") == "s \"\(nic)\"")
            let bridge = try #require(Self.quoted(try await bus.switchProperty(path, "Bridge")).first)
            #expect(bridge.hasPrefix("vmbr") && Self.master(of: nic) == bridge, "\(bridge), \(String(describing: Self.master(of: nic)))")
            #expect(try await virsh(["net-dumpxml", name]).stdout.contains("<forward mode='bridge'/>"))

            // A VM that boots from the network (iPXE) on the switch.
            let vm = try await bus.createVM(vmName, switchPath: path)
            let mac = try #require(try await bus.adapters(vm).first?.mac)
            var xml = try await virsh(["dumpxml", "--inactive", vmName]).stdout
            xml = xml.replacingOccurrences(of: "<boot dev='hd'/>", with: "")
                .replacingOccurrences(of: "<model type='virtio'/>", with: "<model type='virtio'/><boot order='1'/>")
            let file = NSTemporaryDirectory() + "vmms-it-\(vmName).xml"
            try xml.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            #expect(try await virsh(["define", file]).status == 0)
            _ = try await bus.call(vm, Self.vmInterface, "Start")
            try await Self.waitUntil("the LAN sees a DHCP request from \(mac)", seconds: 90) {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("DHCPDISCOVER(\(lanEnd)) \(mac)")
            }
            let added = try await bus.addAdapter(vm, path)
            let live = try await virsh(["domiflist", vmName]).stdout
            let tap = try #require(live.split(separator: "\n").first { $0.contains(added) }?.split(separator: " ").first.map(String.init))
            #expect(Self.master(of: tap) == bridge)
            let refused = try await Self.gdbus.call(path, "\(Self.switchInterface).Delete")
            Self.expectError(Self.error + "InvalidState", "Delete while in use", refused, mentioning: vmName)
            _ = try await bus.call(vm, Self.vmInterface, "TurnOff")
            _ = try await bus.call(vm, Self.vmInterface, "Delete", "a{sv}", ["0"])

            _ = try await bus.call(path, Self.switchInterface, "Delete")
            #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"), "the bridge is left")
            #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(nic)") && Self.master(of: nic) == nil, "the NIC is not released")

            // Macvtap: the NIC itself, no bridge.
            _ = try await Self.ip(["link", "add", otherNIC, "type", "veth", "peer", "name", otherPeer])
            sandbox.link(otherNIC)
            let links = try await Self.linkNames()
            let direct = try await bus.createSwitch(macvtap, "External", ["Interface": otherNIC, "Mode": "Macvtap"])
            #expect(try await bus.switchProperty(direct, "Bridge") == "s \"\"")
            #expect(try await bus.switchProperty(direct, "Interface") == "s \"\(otherNIC)\"")
            #expect(try await virsh(["net-dumpxml", macvtap]).stdout.contains("<interface dev='\(otherNIC)'/>"))
            #expect(try await Self.linkNames() == links, "a macvtap switch made a link")
            _ = try await bus.call(direct, Self.switchInterface, "Delete")
        }
    }

    /// The bridge of an External switch removed behind the service's back (`ip link del`, or
    /// gone after a reboot) is made again around its NIC when the switch starts again.
    @Test func anExternalBridgeRemovedBehindTheServicesBackIsMadeAgainAtTheNextStart() async throws {
        try await Self.withService { service, bus, sandbox in
            let name = Names.unique("swr")
            sandbox.network(name)
            let tag = String(UUID().uuidString.prefix(5).lowercased())
            let (nic, peer) = ("xr\(tag)", "xs\(tag)")
            _ = try await Self.ip(["link", "add", nic, "type", "veth", "peer", "name", peer])
            sandbox.link(nic)
            let path = try await bus.createSwitch(name, "External", ["Interface": nic])
            let bridge = try #require(Self.quoted(try await bus.switchProperty(path, "Bridge")).first)
            sandbox.link(bridge)
            _ = try await Self.ip(["link", "del", "dev", bridge])
            #expect(try await virsh(["net-destroy", name]).status == 0)
            #expect(try await virsh(["net-start", name]).status == 0)
            try await Self.waitUntil("\(bridge) made again around \(nic)") { Self.master(of: nic) == bridge }
            #expect(service.log.contains("made the bridge \(bridge) around \(nic) again"))
            _ = try await bus.call(path, Self.switchInterface, "Delete")
            #expect(Self.master(of: nic) == nil)
        }
    }

    /// vmmsd killed between the steps of an External CreateSwitch: the next start undoes what
    /// was made (bridge, network) from the journal, and the NIC is free again.
    @Test(arguments: ["CreateSwitch.bridgeCreated", "CreateSwitch.networkDefined"])
    func aCrashDuringCreateSwitchLeavesNoNetworkAndNoBridge(point: String) async throws {
        let sandbox = Sandbox()
        defer { sandbox.cleanUp() }
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-crash-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let name = Names.unique("swc")
            sandbox.network(name)
            let tag = String(UUID().uuidString.prefix(5).lowercased())
            let (nic, peer, bridge) = ("xc\(tag)", "xd\(tag)", "brc\(tag)")
            _ = try await Self.ip(["link", "add", nic, "type", "veth", "peer", "name", peer])
            sandbox.link(nic)
            sandbox.link(bridge)
            let crashing = try await SystemVMMSD(stateDirectory: state, environment: ["VMMSD_TEST_CRASH_AT": point])
            let outcome = try await Self.createSwitchOutcome(name, "External", "{'Interface': <'\(nic)'>, 'Bridge': <'\(bridge)'>}")
            #expect(!outcome.ok, "CreateSwitch replied although vmmsd should have died at \(point)")
            try await Self.waitUntil("vmmsd dies at \(point)") { crashing.process.exitStatusIfExited() != nil }
            crashing.stop()
            // What the crash left, so the restart has something to undo.
            #expect(Self.master(of: nic) == bridge, "no bridge around \(nic) after a crash at \(point)")
            #expect(try await Self.networkNames().contains(name) == (point == "CreateSwitch.networkDefined"))

            let restarted = try await SystemVMMSD(stateDirectory: state)
            defer { restarted.stop() }
            #expect(!(try await Self.networkNames().contains(name)), "a network was left after a crash at \(point)")
            #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"), "the bridge was left after a crash at \(point)")
            #expect(Self.master(of: nic) == nil)
            let journal = (try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? []
            #expect(journal.isEmpty, "\(journal)")
            let path = try await Busctl().createSwitch(name, "External", ["Interface": nic, "Bridge": bridge])
            _ = try await Busctl().call(path, Self.switchInterface, "Delete")
        }
    }

    /// vmmsd killed after an External switch's network is gone but before its bridge: the next
    /// start removes the bridge and the NIC is free.
    @Test func aCrashDuringDeleteOfAnExternalSwitchLeavesNoBridge() async throws {
        let sandbox = Sandbox()
        defer { sandbox.cleanUp() }
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-crash-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let name = Names.unique("swd")
            sandbox.network(name)
            let tag = String(UUID().uuidString.prefix(5).lowercased())
            let (nic, peer, bridge) = ("xe\(tag)", "xf\(tag)", "brd\(tag)")
            _ = try await Self.ip(["link", "add", nic, "type", "veth", "peer", "name", peer])
            sandbox.link(nic)
            sandbox.link(bridge)
            let crashing = try await SystemVMMSD(stateDirectory: state, environment: ["VMMSD_TEST_CRASH_AT": "DeleteSwitch.networkRemoved"])
            let path = try await Busctl().createSwitch(name, "External", ["Interface": nic, "Bridge": bridge])
            let outcome = try await Self.gdbus.call(path, "\(Self.switchInterface).Delete")
            #expect(!outcome.ok, "Delete replied although vmmsd should have died")
            try await Self.waitUntil("vmmsd dies") { crashing.process.exitStatusIfExited() != nil }
            crashing.stop()
            #expect(!(try await Self.networkNames().contains(name)))
            #expect(Self.master(of: nic) == bridge, "the bridge should still be there after the crash")

            let restarted = try await SystemVMMSD(stateDirectory: state)
            defer { restarted.stop() }
            #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"), "the bridge outlived its switch")
            #expect(Self.master(of: nic) == nil)
            let journal = (try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? []
            #expect(journal.isEmpty, "\(journal)")
        }
    }

    /// A polkit rule that lets bob plug one VM into one switch, by the details vmms passes.
    @Test func aRuleOnVMAndSwitchNamesLetsBobPlugOneVMIntoOneSwitchOnly() async throws {
        try await Self.withService { service, bus, sandbox in
            let (lab, other, vmName) = (Names.unique("swl"), Names.unique("swo"), Names.unique("swpk"))
            [lab, other].forEach(sandbox.network)
            sandbox.vm(vmName)
            let labPath = try await bus.createSwitch(lab, "Private")
            let otherPath = try await bus.createSwitch(other, "Private")
            let vm = try await bus.createVM(vmName)
            let rule = "/etc/polkit-1/rules.d/49-vmms-it-\(vmName).rules"
            try """
            polkit.addRule(function(action, subject) {
                if (action.id == "org.example.vmms1.vm.configure" && subject.user == "bob" &&
                    action.lookup("vm.name") == "\(vmName)" && action.lookup("switch.name") == "\(lab)") {
                    return polkit.Result.YES;
                }
            });
            """.write(toFile: rule, atomically: true, encoding: .utf8)
            sandbox.onCleanUp { try? FileManager.default.removeItem(atPath: rule) }
            let bob = GDBus(user: "bob")
            var plugged: GDBus.Outcome?
            // polkitd reads rules files when they change; give it a moment.
            try await Self.waitUntil("polkitd takes the rule", seconds: 15) {
                plugged = try await bob.call(vm, "\(Self.vmInterface).AddNetworkAdapter", [labPath])
                return plugged?.ok == true
            }
            #expect(plugged?.output.contains("02:56:4d:") == true, "\(String(describing: plugged))")
            Self.expectError(Self.error + "NotAuthorized", "bob on another switch", try await bob.call(vm, "\(Self.vmInterface).AddNetworkAdapter", [otherPath]))
            #expect(try await bus.adapters(vm).map(\.path) == [labPath])
            _ = try await bus.call(vm, Self.vmInterface, "Delete", "a{sv}", ["0"])
        }
    }

    @Test func badInputGetsTheDocumentedErrorAndChangesNothing() async throws {
        try await Self.withService { service, bus, sandbox in
            let name = Names.unique("swb"), vmName = Names.unique("swbvm"), gone = Names.unique("swg")
            [name, gone].forEach(sandbox.network)
            sandbox.vm(vmName)
            let subnet = try await Self.freeSubnet()
            let existing = try await bus.createSwitch(name, "Internal", ["Address": "\(subnet).1/24"])
            let deleted = try await bus.createSwitch(gone, "Private")
            _ = try await bus.call(deleted, Self.switchInterface, "Delete")
            let vm = try await bus.createVM(vmName)
            // NICs for External: one with an address (never enslaved), one already in a bridge.
            let tag = String(UUID().uuidString.prefix(5).lowercased())
            let (addressed, busy, busyPeer, holder) = ("va\(tag)", "vb\(tag)", "vc\(tag)", "bh\(tag)")
            _ = try await Self.ip(["link", "add", addressed, "type", "veth", "peer", "name", "vp\(tag)"])
            sandbox.link(addressed)
            _ = try await Self.ip(["addr", "add", "10.213.254.1/30", "dev", addressed])
            _ = try await Self.ip(["link", "add", busy, "type", "veth", "peer", "name", busyPeer])
            sandbox.link(busy)
            _ = try await Self.ip(["link", "add", holder, "type", "bridge"])
            sandbox.link(holder)
            _ = try await Self.ip(["link", "set", busy, "master", holder])

            let networks = try await Self.networkNames(), links = try await Self.linkNames()
            let definition = try await virsh(["dumpxml", "--inactive", vmName]).stdout
            let invalid = DBusError.Name.invalidArgs
            // Names for creates that must fail; removed again should one succeed.
            func fresh() -> String {
                let name = Names.unique("swx")
                sandbox.network(name)
                return name
            }
            for odd in ["-lead", "a/b", String(repeating: "x", count: 65), "tab\there"] {
                Self.expectError(invalid, "name \(odd)", try await Self.createSwitchOutcome(odd, "Private"))
            }
            Self.expectError(invalid, "unknown type", try await Self.createSwitchOutcome(fresh(), "Bridge"), mentioning: "Private, Internal, External, NAT")
            Self.expectError(invalid, "overlapping switch", try await Self.createSwitchOutcome(fresh(), "NAT", "{'Address': <'\(subnet).77/16'>}"),
                             mentioning: "the switch \(name)")
            Self.expectError(invalid, "overlapping host route", try await Self.createSwitchOutcome(fresh(), "Internal", "{'Address': <'10.213.254.2/24'>}"),
                             mentioning: addressed)
            Self.expectError(invalid, "an address on Private", try await Self.createSwitchOutcome(fresh(), "Private", "{'Address': <'10.1.1.1/24'>}"))
            Self.expectError(invalid, "missing NIC", try await Self.createSwitchOutcome(fresh(), "External", "{'Interface': <'nosuchnic0'>}"),
                             mentioning: "no network interface nosuchnic0")
            Self.expectError(invalid, "NIC with an address", try await Self.createSwitchOutcome(fresh(), "External", "{'Interface': <'\(addressed)'>}"),
                             mentioning: "has addresses")
            Self.expectError(invalid, "enslaved NIC", try await Self.createSwitchOutcome(fresh(), "External", "{'Interface': <'\(busy)'>}"),
                             mentioning: "enslaved to \(holder)")
            Self.expectError(invalid, "unknown option", try await Self.createSwitchOutcome(fresh(), "Private", "{'Vlan': <uint32 5>}"))
            Self.expectError(Self.error + "AlreadyExists", "taken name", try await Self.createSwitchOutcome(name, "Private"))
            Self.expectError(Self.error + "AlreadyExists", "bridge clash", try await Self.createSwitchOutcome(fresh(), "Private", "{'Bridge': <'\(holder)'>}"))

            Self.expectError(Self.error + "NotFound", "a deleted switch", try await Self.gdbus.call(vm, "\(Self.vmInterface).AddNetworkAdapter", [deleted]))
            Self.expectError(invalid, "no switch path", try await Self.gdbus.call(vm, "\(Self.vmInterface).AddNetworkAdapter", [Self.host]))
            Self.expectError(invalid, "an absent MAC", try await Self.gdbus.call(vm, "\(Self.vmInterface).RemoveNetworkAdapter", ["02:56:4d:00:00:00"]),
                             mentioning: "no network adapter")
            Self.expectError(invalid, "no MAC at all", try await Self.gdbus.call(vm, "\(Self.vmInterface).RemoveNetworkAdapter", ["not-a-mac"]))
            let missingVM = Names.unique("swnovm")
            Self.expectError(Self.error + "NotFound", "CreateVM on a deleted switch", try await Self.gdbus.call(Self.host, "\(Self.hostInterface).CreateVM",
                [missingVM, "{'Generation': <uint32 1>, 'Switch': <objectpath '\(deleted)'>}"]))
            #expect(try await virsh(["dominfo", missingVM]).status != 0, "a VM was left behind")
            Self.expectError(Self.error + "NotFound", "Delete of a deleted switch", try await Self.gdbus.call(deleted, "\(Self.switchInterface).Delete"))

            #expect(try await Self.networkNames() == networks)
            #expect(try await Self.linkNames() == links)
            #expect(Self.master(of: busy) == holder && Self.master(of: addressed) == nil)
            #expect(try await virsh(["dumpxml", "--inactive", vmName]).stdout == definition)
            _ = try await bus.call(vm, Self.vmInterface, "Delete", "a{sv}", ["0"])
            _ = try await bus.call(existing, Self.switchInterface, "Delete")
        }
    }

    @Test func bobIsRefusedSwitchesAndAdaptersAliceIsNot() async throws {
        try await Self.withService { _, _, sandbox in
            let (name, refused) = (Names.unique("swu"), Names.unique("swr"))
            [name, refused].forEach(sandbox.network)
            let bob = GDBus(user: "bob")
            let denied = try await bob.call(Self.host, "\(Self.hostInterface).CreateSwitch", [refused, "Private", "{}"])
            Self.expectError(Self.error + "NotAuthorized", "bob's CreateSwitch", denied)
            #expect(!(try await Self.networkNames().contains(refused)))
            let path = try await Busctl(user: "alice").createSwitch(name, "Private")
            Self.expectError(Self.error + "NotAuthorized", "bob's Delete", try await bob.call(path, "\(Self.switchInterface).Delete"))
            let vmName = Names.unique("swbob")
            sandbox.vm(vmName)
            let vm = try await Busctl(user: "alice").createVM(vmName)
            let mac = try await Busctl(user: "alice").addAdapter(vm, path)
            let definition = try await virsh(["dumpxml", "--inactive", vmName]).stdout
            Self.expectError(Self.error + "NotAuthorized", "bob's AddNetworkAdapter", try await bob.call(vm, "\(Self.vmInterface).AddNetworkAdapter", [path]))
            Self.expectError(Self.error + "NotAuthorized", "bob's RemoveNetworkAdapter", try await bob.call(vm, "\(Self.vmInterface).RemoveNetworkAdapter", [mac]))
            #expect(try await virsh(["dumpxml", "--inactive", vmName]).stdout == definition)
            _ = try await Busctl(user: "alice").call(vm, Self.vmInterface, "Delete", "a{sv}", ["0"])
            #expect(try await Self.networkNames().contains(name))
            _ = try await Busctl(user: "alice").call(path, Self.switchInterface, "Delete")
            #expect(!(try await Self.networkNames().contains(name)))
        }
    }
}
