import Foundation
import Libvirt
import TestSupport
import Testing

/// A second libvirt host on this machine, as in /work/shared/notes/migration.md: a libvirtd in
/// its own network namespace (reached over a veth pair in an unused 10.251.x.0/24) and mount
/// namespace (its own /run, /var/lib, /etc, /var/cache, /var/log of libvirt), listening on TCP
/// inside the namespace only. `remove()` destroys its domains, stops that libvirtd (by the
/// pid it wrote) and removes the namespace, the veth and the files.
final class SecondHost: Sendable {
    let octet: Int
    let namespace: String
    let link: String
    let directory: ScratchDirectory
    /// The destination libvirtd's address, on the namespace side of the veth.
    var address: String { "10.251.\(octet).2" }
    var uri: String { "qemu+tcp://\(address)/system" }

    private init(octet: Int, directory: ScratchDirectory) {
        self.octet = octet
        self.directory = directory
        namespace = "lt-mig-\(octet)"
        link = "vmltm\(octet)"
    }

    static func start() async throws -> SecondHost {
        let host = SecondHost(octet: try await unusedSubnet(in: 128...254), directory: try ScratchDirectory())
        do {
            try await host.setUp()
            return host
        } catch {
            await host.remove()
            throw error
        }
    }

    private func setUp() async throws {
        // Traffic to the destination must leave through our veth, nowhere else.
        try await SecondLibvirtd.makeLink(namespace: namespace, link: link, hostAddress: "10.251.\(octet).1", address: address,
                                          routed: [address])
        try await SecondLibvirtd.start(namespace: namespace, root: directory.url.path, address: address)
        let uri = uri
        guard await poll(timeout: .seconds(20), { (try? LibvirtConnection(uri: uri)) != nil }) else {
            throw TestFailure("the second libvirtd did not answer at \(uri)")
        }
    }

    /// The libvirtd this host started, from its pid file.
    private var daemonPID: pid_t? {
        (try? String(contentsOfFile: directory.path("libvirtd.pid"), encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    func remove() async {
        if let connection = try? LibvirtConnection(uri: uri) {
            for domain in (try? connection.allDomains()) ?? [] {
                if (try? domain.isActive) == true { try? domain.destroy() }
                try? domain.undefine(flags: [.managedSave, .snapshotsMetadata, .nvram])
            }
        }
        if let pid = daemonPID {
            kill(pid, SIGTERM)
            let stopped = await poll(timeout: .seconds(15)) { kill(pid, 0) != 0 }
            if !stopped { kill(pid, SIGKILL) }
        }
        _ = try? await runCommand("/usr/sbin/ip", ["netns", "del", namespace])
        _ = try? await runCommand("/usr/sbin/ip", ["link", "del", link])
        directory.remove()
    }
}

/// Migrations to a second libvirtd on this machine (see `SecondHost`), tiny TCG guests whose
/// disk both hosts see at the same path.
@Suite("Migration between two libvirt hosts", .usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason),
       .timeLimit(.minutes(15)))
struct RealMigrationTests {
    let connection: LibvirtConnection

    init() throws {
        connection = try openSystem()
    }

    @Test func liveMigrationMovesTheRunningDomainAndItsDefinition() async throws {
        let scratch = try await ScratchDomain.make(on: connection)
        defer { scratch.remove() }
        let host = try await SecondHost.start()
        let destination = try LibvirtConnection(uri: host.uri)
        let events = Recorder<DomainEvent>()
        let registration = try connection.registerDomainEvents { if $0.uuid == scratch.uuid { events.record($0) } }
        defer { registration.deregister() }

        do {
            let moved = try scratch.domain.migrate(
                to: destination, parameters: MigrationParameters(migrateURI: "tcp://\(host.address)"),
                flags: [.live, .persistDestination, .undefineSource, .unsafe])
            #expect(try moved.uuid == scratch.uuid)
            #expect(try moved.state().state == .running)
            #expect(try moved.isPersistent)
            let gone = #expect(throws: LibvirtError.self) { try connection.domain(uuid: scratch.uuid) }
            #expect(gone?.code == .noDomain)
            #expect(await events.wait { events in
                events.contains { event in
                    guard case .lifecycle(_, _, let detail) = event, event.lifecycleEvent == .stopped else { return false }
                    return StoppedDetail(rawValue: detail) == .migrated
                }
            }, "\(events.all)")
        } catch {
            await host.remove()
            throw error
        }
        await host.remove()
    }

    @Test func peerToPeerMigrationToAURIRenamesOnTheWay() async throws {
        let scratch = try await ScratchDomain.make(on: connection, transient: true)
        defer { scratch.remove() }
        let host = try await SecondHost.start()
        do {
            let newName = uniqueName("moved")
            try scratch.domain.migrate(
                toURI: host.uri,
                parameters: MigrationParameters(migrateURI: "tcp://\(host.address)", destinationName: newName),
                flags: [.live, .peerToPeer, .unsafe])
            let destination = try LibvirtConnection(uri: host.uri)
            #expect(try destination.domain(name: newName).uuid == scratch.uuid)
            #expect(throws: LibvirtError.self) { try connection.domain(uuid: scratch.uuid) }
        } catch {
            await host.remove()
            throw error
        }
        await host.remove()
    }

    @Test func aThrottledStorageMigrationReportsProgressAndAbortLeavesItRunningHere() async throws {
        let scratch = try await ScratchDomain.make(on: connection, transient: true, patternMiB: 32)
        defer { scratch.remove() }
        let host = try await SecondHost.start()
        do {
            // Both hosts see /tmp: the copy goes to another file of the same size there.
            let copy = scratch.directory.path("copy.qcow2")
            try await makeQcow2(copy)
            let xml = try scratch.domain.xml(flags: [.migratable, .secure])
                .replacingOccurrences(of: scratch.diskPath, with: copy)
            let parameters = MigrationParameters(migrateURI: "tcp://\(host.address)", destinationXML: xml,
                                                 bandwidthMiBPerSecond: 1, disks: ["sda"])
            let pool = LibvirtWorkerPool(name: "lt-migrate", threads: 1, queueLimit: 0)
            let domain = scratch.domain, uri = host.uri
            let migration = Task {
                try await pool.run(timeout: .seconds(120)) {
                    try domain.migrate(toURI: uri, parameters: parameters, flags: [.live, .peerToPeer, .nonSharedDisk])
                }
            }
            var stats: DomainJobStats?
            #expect(try await poll(timeout: .seconds(60)) {
                stats = try domain.jobStats()
                return (stats?.diskProcessed ?? 0) > 0
            }, "\(String(describing: stats))")
            #expect(stats?.operation == .migrationOut)
            #expect(stats?.diskTotal == 64 << 20)
            #expect(stats?.dataTotal != nil && stats?.timeElapsedMs != nil)

            try domain.abortJob()
            let error = await #expect(throws: LibvirtError.self) { try await migration.value }
            #expect(error?.code == .operationAborted)
            #expect(error?.function == "virDomainMigrateToURI3")
            #expect(try domain.state().state == .running)
            #expect(try LibvirtConnection(uri: host.uri).allDomains().isEmpty)
        } catch {
            await host.remove()
            throw error
        }
        await host.remove()
    }
}
