import DBus
import Foundation
import Spawn
import Synchronization
import TestSupport
import Testing

/// A second vmms host on this machine, made as in /work/shared/notes/migration.md: a
/// libvirtd in its own network namespace (reached over a veth pair in an unused
/// 10.250.x.0/24) and mount namespace (its own run/lib/etc/cache/log of libvirt, and its own
/// empty folder over this host's VirtualHardDiskPath, so disks there are not shared), listening
/// on TCP inside the namespace only; and a vmmsd for it on a private bus. `remove()` stops
/// both daemons (by pid) and removes the namespace, the veth and the files.
final class DestinationHost: Sendable {
    let octet: Int
    let namespace: String
    let link: String
    let root: String
    let bus: PrivateBus
    private let daemon: Mutex<ChildProcess?> = Mutex(nil)
    var address: String { "10.250.\(octet).2" }
    var uri: String { "qemu+tcp://\(address)/system" }
    /// An address on our veth's subnet that nobody answers.
    var unreachableURI: String { "qemu+tcp://10.250.\(octet).3/system" }
    /// Where this host's VirtualHardDiskPath really is inside the destination's namespace.
    var diskFolder: String { root + "/img" }
    /// This host's end of the veth, and its libvirtd as the destination reaches it there
    /// (through `relayToThisHost`).
    var hostAddress: String { "10.250.\(octet).1" }
    var hostURI: String { "qemu+tcp://\(hostAddress)/system" }

    private init(octet: Int) throws {
        self.octet = octet
        namespace = "vmms-mig-\(octet)"
        link = "vmmsmig\(octet)"
        root = NSTemporaryDirectory() + "vmms-mighost-\(UUID().uuidString.prefix(8))"
        bus = try PrivateBus()
    }

    static func start(privateDiskFolder: String) async throws -> DestinationHost {
        let host = try DestinationHost(octet: try await unusedOctet())
        do {
            try await host.setUp(privateDiskFolder: privateDiskFolder)
            return host
        } catch {
            await host.remove()
            throw error
        }
    }

    private static func unusedOctet() async throws -> Int {
        let addresses = try await runCommand("/usr/sbin/ip", ["-o", "-4", "addr", "show"]).stdout
        let routes = try await runCommand("/usr/sbin/ip", ["-4", "route", "show", "table", "all"]).stdout
        for _ in 0..<50 {
            let octet = Int.random(in: 1...254)
            if !addresses.contains("10.250.\(octet).") && !routes.contains("10.250.\(octet).") { return octet }
        }
        throw TestFailure("no unused 10.250.x.0/24")
    }

    @discardableResult
    private func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let result = try await runCommand(executable, arguments)
        guard result.status == 0 else { throw TestFailure("\(executable) \(arguments.joined(separator: " ")): \(result.stdout)\(result.stderr)") }
        return result.stdout
    }

    private func setUp(privateDiskFolder: String) async throws {
        // Traffic to the destination (and to the unreachable address) leaves through our veth only.
        try await SecondLibvirtd.makeLink(namespace: namespace, link: link, hostAddress: "10.250.\(octet).1", address: address,
                                          routed: [address, "10.250.\(octet).3"])
        try FileManager.default.createDirectory(atPath: "\(root)/state", withIntermediateDirectories: true)
        try await SecondLibvirtd.start(namespace: namespace, root: root, address: address, extraConfig: "max_client_requests = 20",
                                       extraMounts: [("img", privateDiskFolder)])
        guard await Self.poll({ await ((try? runCommand("/usr/bin/virsh", ["-c", self.uri, "uri"]))?.status == 0) }) else {
            throw TestFailure("the second libvirtd did not answer at \(uri)")
        }
        // Its vmms, beside it on a private bus.
        let process = try ChildProcess(builtVMMSD, ["--address", bus.address, "--connect", uri, "--accelerator", "tcg",
                                                    "--state-dir", root + "/state"], stderrPath: root + "/vmmsd.log")
        daemon.withLock { $0 = process }
        let connection = try bus.connect()
        defer { connection.close() }
        guard await Self.poll({
            (try? await connection.call(destination: "org.example.VMMS1", path: "/org/example/VMMS1/Host",
                                        interface: "org.freedesktop.DBus.Peer", member: "Ping", [], timeout: .seconds(2))) != nil
        }) else {
            throw TestFailure("the destination vmmsd did not start: \((try? String(contentsOfFile: root + "/vmmsd.log", encoding: .utf8)) ?? "")")
        }
    }

    static func poll(_ condition: () async -> Bool) async -> Bool {
        for _ in 0..<200 {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Lets the destination reach this host's libvirtd, to move VMs back: socat relays TCP
    /// on this end of the veth only (no other address listens) to libvirtd's unix socket, as
    /// root, so the destination's libvirtd can migrate peer to peer to `hostURI`. Returns the
    /// function that stops the relay and the connections it forked.
    func relayToThisHost() async throws -> @Sendable () async -> Void {
        let relay = try ChildProcess("/usr/bin/socat", ["TCP-LISTEN:16509,bind=\(hostAddress),reuseaddr,fork",
                                                        "UNIX-CONNECT:/run/libvirt/libvirt-sock"], stderrPath: root + "/socat.log")
        let address = hostAddress
        let stop: @Sendable () async -> Void = {
            relay.signal(SIGTERM)
            _ = await withCheckedContinuation { done in Thread.detachNewThread { done.resume(returning: relay.wait()) } }
            _ = try? await runCommand("/usr/bin/pkill", ["-f", "bind=\(address),"])
        }
        guard await Self.poll({ await ((try? runCommand("/usr/bin/virsh", ["-c", self.hostURI, "uri"]))?.status == 0) }) else {
            await stop()
            throw TestFailure("this host's libvirtd does not answer at \(hostURI) through socat")
        }
        return stop
    }

    /// `virsh -c` the destination.
    func virsh(_ arguments: [String]) async throws -> CommandResult {
        try await runCommand("/usr/bin/virsh", ["-c", uri] + arguments)
    }

    func remove() async {
        if let process = daemon.withLock({ $0 }) {
            process.signal(SIGTERM)
            for _ in 0..<200 where process.exitStatusIfExited() == nil { try? await Task.sleep(for: .milliseconds(50)) }
            if process.exitStatusIfExited() == nil { process.signal(SIGKILL); _ = process.wait() }
        }
        if let names = try? await virsh(["list", "--all", "--name"]).stdout {
            for name in names.split(separator: "\n").map(String.init) where !name.isEmpty {
                _ = try? await virsh(["destroy", name])
                _ = try? await virsh(["undefine", name, "--nvram", "--managed-save"])
            }
        }
        if let text = try? String(contentsOfFile: root + "/libvirtd.pid", encoding: .utf8),
           let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGTERM)
            for _ in 0..<300 where kill(pid, 0) == 0 { try? await Task.sleep(for: .milliseconds(50)) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        _ = try? await runCommand("/usr/sbin/ip", ["netns", "del", namespace])
        _ = try? await runCommand("/usr/sbin/ip", ["link", "del", link])
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// VM.Move to another host on the real stack: the system vmmsd over qemu:///system moves VMs
/// to a `DestinationHost`, whose own vmmsd shows them arrive.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason), .timeLimit(.minutes(10)))
struct MigrationTests {
    typealias Client = LifecycleTests.Client
    static let vmInterface = "org.example.VMMS1.VM"
    static let props = "org.freedesktop.DBus.Properties"
    static let mib: UInt64 = 1 << 20

    /// The system vmmsd (with `migration-destinations` listing the destination), the
    /// destination host, a client of each and a job watcher; all torn down after `body`.
    static func withHosts(environment: [String: String] = [:],
                          _ body: (_ source: Client, _ watcher: JobTests.Watcher, _ destination: DestinationHost,
                                   _ destinationBus: DBusConnection) async throws -> Void) async throws {
        try await SystemBusNameLock.with {
            let probe = try await SystemVMMSD()
            let client = Client(bus: try DBusConnection(bus: .system))
            let diskFolder = try await client.diskDirectory()
            client.bus.close()
            probe.stop()
            let destination = try await DestinationHost.start(privateDiskFolder: diskFolder)
            let config = destination.root + "/vmmsd.conf"
            do {
                try "migration-destinations = \(destination.uri)\n".write(toFile: config, atomically: true, encoding: .utf8)
                let service = try await SystemVMMSD(extraArguments: ["--config", config], environment: environment)
                defer { service.stop() }
                let source = Client(bus: try DBusConnection(bus: .system))
                defer { source.bus.close() }
                let watcher = try await JobTests.Watcher(source.bus)
                let destinationBus = try destination.bus.connect()
                defer { destinationBus.close() }
                try await body(source, watcher, destination, destinationBus)
            } catch {
                await destination.remove()
                throw error
            }
            await destination.remove()
        }
    }

    /// A 64 MiB diskless generation-1 VM (or with a disk of `diskMiB`, `dataMiB` of it a
    /// pattern), removed after `body` here (the destination's go with it).
    static func withVM(_ client: Client, _ prefix: String, diskMiB: UInt64 = 0, dataMiB: Int = 0,
                       _ body: (_ path: ObjectPath, _ name: String, _ disk: String?) async throws -> Void) async throws {
        let name = Names.unique(prefix)
        var settings: [String: DBusValue] = ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 * mib)]
        if diskMiB > 0 { settings["NewDiskSizeBytes"] = .uint64(diskMiB * mib) }
        let path = try await client.create(name, settings)
        let disk = diskMiB > 0 ? try await JobTests.disks(name).first : nil
        if let disk, dataMiB > 0 {
            let written = try await runCommand("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 1M \(dataMiB)M", disk])
            #expect(written.status == 0, "\(written.stderr)")
        }
        do {
            try await body(path, name, disk)
        } catch {
            await JobTests.remove(name, files: disk.map { [$0] } ?? [])
            throw error
        }
        await JobTests.remove(name, files: disk.map { [$0] } ?? [])
    }

    static func move(_ client: Client, _ path: ObjectPath, to uri: String, includeStorage: Bool = false) async throws -> ObjectPath {
        let options: [String: DBusValue] = includeStorage ? ["IncludeStorage": .boolean(true)] : [:]
        let reply = try await client.call(path, vmInterface, "Move", [.string(uri), .vardict(options)])
        guard let job = reply.first?.objectPath else { throw TestFailure("Move returned \(reply)") }
        return job
    }

    /// The paths of the VMs the destination's vmmsd announces from now on.
    final class Arrivals: Sendable {
        actor Seen {
            var paths: [String] = []
            func add(_ path: String) { paths.append(path) }
        }
        let seen = Seen()
        let consumer: Task<Void, Never>
        init(_ bus: DBusConnection) async throws {
            let added = try await bus.signals(matching: MatchRule(sender: "org.example.VMMS1", interface: "org.freedesktop.DBus.ObjectManager",
                                                                  member: "InterfacesAdded"))
            let seen = self.seen
            consumer = Task {
                for await signal in added {
                    if let path = signal.body.first?.objectPath, signal.body.dropFirst().first?.stringKeyedDictionary?[MigrationTests.vmInterface] != nil {
                        await seen.add(path.rawValue)
                    }
                }
            }
        }
        deinit { consumer.cancel() }
        func wait(for path: ObjectPath) async -> Bool {
            let seen = self.seen
            return await DestinationHost.poll { await seen.paths.contains(path.rawValue) }
        }
    }

    static func destinationState(_ bus: DBusConnection, _ path: ObjectPath) async -> String? {
        try? await bus.call(destination: "org.example.VMMS1", path: path, interface: props, member: "Get",
                            [.string(vmInterface), .string("State")], timeout: .seconds(10)).first?.variant?.string
    }

    /// The object is gone from the source's vmmsd and libvirt.
    static func goneHere(_ client: Client, _ path: ObjectPath, _ name: String) async throws {
        await #expect(throws: (any Error).self) { _ = try await client.state(path) }
        #expect(try await virsh(["domstate", name]).status != 0, "\(name) is still defined here")
    }

    /// Starts the VM, lets its firmware run for a second and pauses it.
    static func startPaused(_ client: Client, _ path: ObjectPath) async throws {
        try await client.vm(path, "Start")
        try await Task.sleep(for: .seconds(1))
        try await client.vm(path, "Pause")
    }

    /// A paused guest's memory as QEMU prints it through `run` (this host's virsh or the
    /// destination's): the first 16 KiB (interrupt vectors, BIOS data) and SeaBIOS's segment.
    static func guestMemory(_ name: String, _ run: ([String]) async throws -> CommandResult) async throws -> String {
        try await run(["qemu-monitor-command", name, "--hmp", "xp /2048xg 0"]).stdout
            + (try await run(["qemu-monitor-command", name, "--hmp", "xp /1024xg 0xf0000"]).stdout)
    }

    // MARK: Moves

    /// A running TCG VM moves live: the job completes with progress, the VM runs there with
    /// the same UUID, persistent, and the destination's vmmsd announces the same path; here
    /// the object and the domain are gone.
    @Test func runningVMMovesLiveAndArrivesWithTheSamePath() async throws {
        try await Self.withHosts { source, watcher, destination, destinationBus in
            try await Self.withVM(source, "live") { path, name, _ in
                try await source.vm(path, "Start")
                let uuid = try await virsh(["domuuid", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let arrivals = try await Arrivals(destinationBus)
                let job = try await Self.move(source, path, to: destination.uri)
                let ending = await watcher.wait(job)
                #expect(ending?.state == "Completed", "\(String(describing: ending))")
                #expect(ending?.percents.last == 100, "\(String(describing: ending))")
                #expect(await arrivals.wait(for: path), "the destination's vmmsd did not announce \(path)")
                #expect(await Self.destinationState(destinationBus, path) == "Running")
                #expect(try await destination.virsh(["domuuid", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == uuid)
                let info = try await destination.virsh(["dominfo", name]).stdout
                #expect(info.contains("Persistent:     yes"), "\(info)")
                try await Self.goneHere(source, path, name)
            }
        }
    }

    /// A Paused VM moves live and stays Paused there; its memory (16 KiB at 0 and SeaBIOS's 8 KiB, read with
    /// QEMU's xp on each side) is the same, and not all zeros.
    @Test func pausedVMStaysPausedAndKeepsItsMemory() async throws {
        try await Self.withHosts { source, watcher, destination, destinationBus in
            try await Self.withVM(source, "paused") { path, name, _ in
                try await Self.startPaused(source, path)
                let before = try await Self.guestMemory(name, virsh)
                let job = try await Self.move(source, path, to: destination.uri)
                let ending = await watcher.wait(job)
                #expect(ending?.state == "Completed", "\(String(describing: ending))")
                #expect(await Self.destinationState(destinationBus, path) == "Paused")
                let after = try await Self.guestMemory(name, destination.virsh)
                #expect(before.count > 40000 && before == after, "memory differs: \(before.prefix(300)) vs \(after.prefix(300))")
                #expect(before.split(separator: "\n").contains { !$0.hasSuffix("0x0000000000000000 0x0000000000000000") }, "all zeros")
                try await Self.goneHere(source, path, name)
            }
        }
    }

    /// There and back: a Paused VM moves to the destination and then, driven by the
    /// destination's vmmsd, back to this host; it stays Paused, its memory as QEMU shows it is
    /// the same after both moves, this host's vmmsd shows it again at the same path, and the
    /// destination has nothing left of it. Resumed, it goes there and back again, running.
    @Test func aVMMovesThereAndBackPausedAndRunningAndKeepsItsMemory() async throws {
        try await Self.withHosts { source, watcher, destination, destinationBus in
            try await Self.withVM(source, "back") { path, name, _ in
                try await Self.startPaused(source, path)
                let before = try await Self.guestMemory(name, virsh)
                let there = try await Self.move(source, path, to: destination.uri)
                let thereEnding = await watcher.wait(there)
                #expect(thereEnding?.state == "Completed", "\(String(describing: thereEnding))")
                try await Self.goneHere(source, path, name)
                #expect(await Self.destinationState(destinationBus, path) == "Paused")

                let stopRelay = try await destination.relayToThisHost()
                let destinationWatcher = try await JobTests.Watcher(destinationBus)
                func back() async throws {
                    let arrivals = try await Arrivals(source.bus)
                    let back = try await Self.move(Client(bus: destinationBus), path, to: destination.hostURI)
                    let backEnding = await destinationWatcher.wait(back)
                    #expect(backEnding?.state == "Completed", "\(String(describing: backEnding))")
                    #expect(backEnding?.percents.last == 100, "\(String(describing: backEnding))")
                    #expect(await arrivals.wait(for: path), "this host's vmmsd did not announce \(path) again")
                    #expect(try await destination.virsh(["domstate", name]).status != 0, "\(name) is still at the destination")
                    #expect(try await virsh(["dominfo", name]).stdout.contains("Persistent:     yes"))
                }
                do {
                    try await back()
                    #expect(try await source.state(path) == "Paused")
                    let after = try await Self.guestMemory(name, virsh)
                    #expect(before.count > 40000 && before == after, "memory differs: \(before.prefix(300)) vs \(after.prefix(300))")

                    // Running, live, there and back once more.
                    try await source.vm(path, "Resume")
                    let again = try await Self.move(source, path, to: destination.uri)
                    #expect(await watcher.wait(again)?.state == "Completed")
                    #expect(await Self.destinationState(destinationBus, path) == "Running")
                    try await back()
                    #expect(try await source.state(path) == "Running")
                    #expect(try await LifecycleTests.domstate(name) == "running")
                } catch {
                    await stopRelay()
                    throw error
                }
                await stopRelay()
            }
        }
    }

    /// An Off VM: only its definition moves, Off there.
    @Test func offVMMovesItsDefinition() async throws {
        try await Self.withHosts { source, watcher, destination, destinationBus in
            try await Self.withVM(source, "off") { path, name, _ in
                let arrivals = try await Arrivals(destinationBus)
                let job = try await Self.move(source, path, to: destination.uri)
                let ending = await watcher.wait(job)
                #expect(ending?.state == "Completed", "\(String(describing: ending))")
                #expect(await arrivals.wait(for: path))
                #expect(await Self.destinationState(destinationBus, path) == "Off")
                #expect(try await destination.virsh(["domstate", name]).stdout.contains("shut off"))
                try await Self.goneHere(source, path, name)
            }
        }
    }

    /// IncludeStorage: a running VM whose disk the destination does not see (its own folder
    /// is mounted over the disk folder there) moves with a copy of the disk, same contents;
    /// without IncludeStorage the move is refused first, naming the disk.
    @Test func includeStorageCopiesADiskTheDestinationDoesNotSee() async throws {
        try await Self.withHosts { source, watcher, destination, destinationBus in
            let folder = try await source.diskDirectory()
            let pool = "it-migimg-\(destination.octet)"
            #expect(try await destination.virsh(["pool-define-as", pool, "dir", "--target", folder]).status == 0)
            #expect(try await destination.virsh(["pool-start", pool]).status == 0)
            try await Self.withVM(source, "stor", diskMiB: 64, dataMiB: 8) { path, name, disk in
                let disk = try #require(disk)
                try await source.vm(path, "Start")
                let refused = await #expect(throws: DBusError.self) { _ = try await Self.move(source, path, to: destination.uri) }
                #expect(refused?.name == "org.example.VMMS1.Error.NotFound" && refused?.message.contains(disk) == true,
                        "\(String(describing: refused))")
                #expect(try await source.state(path) == "Running")
                let job = try await Self.move(source, path, to: destination.uri, includeStorage: true)
                let ending = await watcher.wait(job)
                #expect(ending?.state == "Completed", "\(String(describing: ending))")
                #expect(await Self.destinationState(destinationBus, path) == "Running")
                let copy = destination.diskFolder + "/" + (disk as NSString).lastPathComponent
                #expect(FileManager.default.fileExists(atPath: copy), "no copy at \(copy)")
                _ = try await destination.virsh(["destroy", name])
                let same = try await runCommand("/usr/bin/qemu-img", ["compare", "-U", disk, copy])
                #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
                // 64 MiB virtual, 8 MiB written: the copy stays sparse.
                let map = try await runCommand("/usr/bin/qemu-img", ["map", "-U", "--output=human", copy]).stdout
                let info = try await runCommand("/usr/bin/qemu-img", ["info", "-U", copy]).stdout
                #expect(JobTests.allocated(copy) < 24 * Self.mib, "\(JobTests.allocated(copy)) bytes allocated, source \(JobTests.allocated(disk)): \(map) \(info)")
                try await Self.goneHere(source, path, name)
            }
        }
    }

    /// Cancel while the disk copy crawls (1 MiB/s): the job ends Cancelled, the VM runs here
    /// as before and nothing is defined there.
    @Test func cancelMidwayLeavesTheVMRunningHere() async throws {
        try await Self.withHosts(environment: ["VMMSD_TEST_MIGRATION_MIBPS": "1"]) { source, watcher, destination, _ in
            let folder = try await source.diskDirectory()
            let pool = "it-migimg-\(destination.octet)"
            #expect(try await destination.virsh(["pool-define-as", pool, "dir", "--target", folder]).status == 0)
            #expect(try await destination.virsh(["pool-start", pool]).status == 0)
            try await Self.withVM(source, "cancel", diskMiB: 64, dataMiB: 48) { path, name, _ in
                try await source.vm(path, "Start")
                let job = try await Self.move(source, path, to: destination.uri, includeStorage: true)
                try await Task.sleep(for: .seconds(3))
                _ = try await source.call(job, "org.example.VMMS1.Job", "Cancel")
                let ending = await watcher.wait(job)
                #expect(ending?.state == "Cancelled", "\(String(describing: ending))")
                #expect(try await source.state(path) == "Running")
                #expect(try await LifecycleTests.domstate(name) == "running")
                #expect(try await destination.virsh(["domstate", name]).status != 0, "\(name) was left at the destination")
            }
        }
    }

    /// `VMMS_BENCH=1`: Move of a running 256 MiB VM against `virsh migrate --live` of a
    /// second, identical VM to the same destination, best of 3 each; prints both and the ratio.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VMMS_BENCH"] == "1"))
    func benchMoveAgainstVirshMigrate() async throws {
        try await Self.withHosts { source, watcher, destination, _ in
            var moves: [Double] = [], virshes: [Double] = []
            for _ in 0..<3 {
                let name = Names.unique("bench")
                let path = try await source.create(name, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(256 * Self.mib)])
                try await source.vm(path, "Start")
                var start = ContinuousClock.now
                let job = try await Self.move(source, path, to: destination.uri)
                let ending = await watcher.wait(job)
                #expect(ending?.state == "Completed", "\(String(describing: ending))")
                moves.append((ContinuousClock.now - start) / .seconds(1))
                _ = try await destination.virsh(["destroy", name]); _ = try await destination.virsh(["undefine", name])

                let other = Names.unique("bench")
                let otherPath = try await source.create(other, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(256 * Self.mib)])
                try await source.vm(otherPath, "Start")
                start = ContinuousClock.now
                let migrated = try await virsh(["migrate", "--live", "--persistent", "--undefinesource", "--unsafe", other, destination.uri,
                                                "--migrateuri", "tcp://\(destination.address)"])
                #expect(migrated.status == 0, "\(migrated.stderr)")
                virshes.append((ContinuousClock.now - start) / .seconds(1))
                _ = try await destination.virsh(["destroy", other]); _ = try await destination.virsh(["undefine", other])
                await JobTests.remove(name); await JobTests.remove(other)
            }
            let move = moves.min() ?? 0, plain = virshes.min() ?? 0
            print("bench: Move \(move) s, virsh migrate --live \(plain) s, ratio \(plain > 0 ? move / plain : 0) (all: \(moves) vs \(virshes))")
        }
    }

    // MARK: Refusals

    /// Each refusal names what is missing and leaves the VM as it was: not in the allow-list
    /// (alice: NotAuthorized; root may), unreachable, a switch missing there, a VM of that
    /// name there.
    @Test func preChecksRefuseAndTheVMStaysAsItWas() async throws {
        try await Self.withHosts { source, _, destination, _ in
            try await Self.withVM(source, "refuse") { path, name, _ in
                try await source.vm(path, "Start")
                let alice = GDBus(user: "alice")
                func move(_ gdbus: GDBus, _ uri: String) async throws -> GDBus.Outcome {
                    try await gdbus.call(path.rawValue, "org.example.VMMS1.VM.Move", [uri, "{}"])
                }
                let unlisted = try await move(alice, destination.unreachableURI)
                #expect(unlisted.errorName == "org.example.VMMS1.Error.NotAuthorized", "\(unlisted)")
                let root = try await move(GDBus(user: "root"), destination.unreachableURI)
                #expect(root.errorName == "org.example.VMMS1.Error.HypervisorUnavailable" && root.output.contains("10.250."), "\(root)")
                let bad = try await move(alice, "qemu:///system")
                #expect(!bad.ok, "\(bad)")

                // A switch that exists only here.
                let network = "it-mign-\(destination.octet)"
                let xml = destination.root + "/net.xml"
                try "<network><name>\(network)</name><bridge name='vmmgn\(destination.octet)'/></network>".write(toFile: xml, atomically: true, encoding: .utf8)
                #expect(try await virsh(["net-define", xml]).status == 0)
                defer { Task { _ = try? await virsh(["net-destroy", network]); _ = try? await virsh(["net-undefine", network]) } }
                #expect(try await virsh(["net-start", network]).status == 0)
                #expect(try await virsh(["attach-interface", name, "network", network, "--live", "--config"]).status == 0)
                try await Task.sleep(for: .seconds(1))
                let missing = try await move(alice, destination.uri)
                #expect(missing.errorName == "org.example.VMMS1.Error.NotFound" && missing.output.contains(network), "\(missing)")
                #expect(try await virsh(["detach-interface", name, "network", "--live", "--config"]).status == 0)
                try await Task.sleep(for: .seconds(1))

                // A VM of that name there.
                let clash = destination.root + "/clash.xml"
                try "<domain type='qemu'><name>\(name)</name><memory unit='MiB'>32</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
                    .write(toFile: clash, atomically: true, encoding: .utf8)
                #expect(try await destination.virsh(["define", clash]).status == 0)
                let taken = try await move(alice, destination.uri)
                #expect(taken.errorName == "org.example.VMMS1.Error.AlreadyExists" && taken.output.contains(name), "\(taken)")
                _ = try await destination.virsh(["undefine", name])

                #expect(try await source.state(path) == "Running")
                #expect(try await LifecycleTests.domstate(name) == "running")
            }
            // An Off VM with a disk: IncludeStorage needs a running QEMU; a checkpoint chain
            // does not travel to another host. Neither starts a job, and the VM stays here.
            try await Self.withVM(source, "refusechk", diskMiB: 16) { path, name, _ in
                let root = GDBus(user: "root")
                let off = try await root.call(path.rawValue, "org.example.VMMS1.VM.Move", [destination.uri, "{'IncludeStorage': <true>}"])
                #expect(off.errorName == "org.example.VMMS1.Error.NotSupported" && off.output.contains("start"), "\(off)")
                _ = try await source.call(path, Self.vmInterface, "Checkpoint", [.string("before-move")])
                let chain = try await root.call(path.rawValue, "org.example.VMMS1.VM.Move", [destination.uri, "{}"])
                #expect(chain.errorName == "org.example.VMMS1.Error.NotSupported" && chain.output.contains("checkpoint"), "\(chain)")
                #expect(try await source.state(path) == "Off")
                #expect(try await destination.virsh(["domstate", name]).status != 0, "\(name) was defined at the destination")
            }
        }
    }
}
