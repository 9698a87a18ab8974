import DBus
import Foundation
import Synchronization

/// Timings of one property read against its floor, in ms.
struct StateReadSamples: Codable, Sendable {
    var ping: [Double] = []
    var get: [Double] = []
}

/// vmms: Get State and Peer.Ping on the same object, interleaved so both see the same noise.
func measureVMMSStateRead(_ bus: DBusConnection, path: ObjectPath, iterations: Int) async throws -> StateReadSamples {
    for _ in 0..<50 {
        try await bus.vmmsPing(path)
        _ = try await bus.vmmsState(path)
    }
    var samples = StateReadSamples()
    samples.ping.reserveCapacity(iterations)
    samples.get.reserveCapacity(iterations)
    for _ in 0..<iterations {
        samples.ping.append(try await timed { try await bus.vmmsPing(path) })
        samples.get.append(try await timed { _ = try await bus.vmmsState(path) })
    }
    return samples
}

/// polkitd alone: CheckAuthorization of org.example.vmms1.vm.power for this process's own bus
/// name, as vmmsd asks for every power call (details aside: only root may pass them), with
/// no vmms in between. Its median is the floor vmms's power calls sit on for a non-root caller.
func measurePolkit(_ bus: DBusConnection, iterations: Int) async throws -> [Double] {
    try await measurePolkit(bus, subjectName: bus.uniqueName, details: [:], cancellation: false, iterations: iterations)
}

/// polkitd alone, asked as vmmsd asks it: by root, for another connection's bus name (the
/// caller's), with the details vmmsd passes and a cancellation id, so that polkitd does all
/// it does for one of vmms's power calls.
func measurePolkit(_ bus: DBusConnection, subjectName: String, details: [String: String], cancellation: Bool,
                   iterations: Int) async throws -> [Double] {
    let subject = DBusValue.structure([.string("system-bus-name"),
                                       .dictionary(key: "s", value: "v", [.init(.string("name"), .variant(.string(subjectName)))])])
    let detailsValue = DBusValue.dictionary(key: "s", value: "s", details.sorted { $0.key < $1.key }.map { .init(.string($0.key), .string($0.value)) })
    var serial = 0
    func check() async throws {
        serial += 1
        let body: [DBusValue] = [subject, .string("org.example.vmms1.vm.power"), detailsValue, .uint32(0),
                                 .string(cancellation ? "vmms-bench-\(serial)" : "")]
        let reply = try await bus.call(destination: "org.freedesktop.PolicyKit1", path: "/org/freedesktop/PolicyKit1/Authority",
                                       interface: "org.freedesktop.PolicyKit1.Authority", member: "CheckAuthorization", body)
        guard case .structure(let fields)? = reply.first, fields.first?.boolean == true else {
            throw BenchError("polkit did not authorize \(subjectName) for vm.power: \(reply)")
        }
    }
    for _ in 0..<20 { try await check() }
    var samples: [Double] = []
    for _ in 0..<iterations { samples.append(try await timed { try await check() }) }
    return samples
}

struct PowerSamples: Codable, Sendable {
    var pause: [Double] = []
    var resume: [Double] = []
    var pair: [Double] = []
}

/// Pause + Resume (or libvirt-dbus Suspend + Resume) of a running VM, `iterations` times.
func measurePower(iterations: Int, pause: () async throws -> Void, resume: () async throws -> Void) async throws -> PowerSamples {
    for _ in 0..<3 {
        try await pause()
        try await resume()
    }
    var samples = PowerSamples()
    for _ in 0..<iterations {
        let a = try await timed(pause)
        let b = try await timed(resume)
        samples.pause.append(a)
        samples.resume.append(b)
        samples.pair.append(a + b)
    }
    return samples
}

/// Result of the concurrency scenario.
struct ConcurrencyResult: Codable, Sendable {
    var clients: Int
    var powerClients: Int
    var seconds: Double
    var reads: Int
    var powerOps: Int
    var errors: Int
    var firstErrors: [String]
    var opsPerSecond: Double
    var readsPerSecond: Double
    var powerOpsPerSecond: Double
    var readLatency: Summary
    var powerLatency: Summary
}

private final class ClientTally: Sendable {
    struct State {
        var reads: [Double] = []
        var power: [Double] = []
        var errors = 0
        var firstErrors: [String] = []
    }
    let state = Mutex(State())

    func read(_ ms: Double) { state.withLock { $0.reads.append(ms) } }
    func power(_ ms: Double) { state.withLock { $0.power.append(ms) } }
    func error(_ error: any Error) {
        state.withLock {
            $0.errors += 1
            if $0.firstErrors.count < 5 { $0.firstErrors.append(String(describing: error)) }
        }
    }
}

/// `clients` connections, each in its own task, for `seconds`: the first `powerTargets.count`
/// clients pause and resume their own running VM, the others read `readTargets` at random.
func runConcurrency(bus: DBus.DBusConnection.Bus, clients: Int, seconds: Double, readTargets: [ObjectPath],
                    powerTargets: [ObjectPath],
                    read: @escaping @Sendable (DBusConnection, ObjectPath) async throws -> Void,
                    power: @escaping @Sendable (DBusConnection, ObjectPath, Bool) async throws -> Void) async throws -> ConcurrencyResult {
    guard !readTargets.isEmpty else { throw BenchError("no read targets") }
    var connections: [DBusConnection] = []
    for _ in 0..<clients { connections.append(try DBusConnection(bus: bus)) }
    defer { connections.forEach { $0.close() } }
    let tally = ClientTally()
    let powerCount = min(powerTargets.count, clients)
    let start = ContinuousClock.now
    let deadline = start + .milliseconds(Int(seconds * 1000))
    await withTaskGroup(of: Void.self) { group in
        for (index, connection) in connections.enumerated() {
            group.addTask {
                if index < powerCount {
                    let target = powerTargets[index]
                    var pausing = true
                    while ContinuousClock.now < deadline {
                        do {
                            let ms = try await timed { try await power(connection, target, pausing) }
                            tally.power(ms)
                            pausing.toggle()
                        } catch {
                            tally.error(error)
                            try? await Task.sleep(for: .milliseconds(10))
                        }
                    }
                    // Leave the VM running.
                    if !pausing { try? await power(connection, target, false) }
                } else {
                    var generator = SystemRandomNumberGenerator()
                    while ContinuousClock.now < deadline {
                        let target = readTargets[Int(generator.next() % UInt64(readTargets.count))]
                        do {
                            let ms = try await timed { try await read(connection, target) }
                            tally.read(ms)
                        } catch {
                            tally.error(error)
                        }
                    }
                }
            }
        }
    }
    let elapsed = start.duration(to: .now).ms / 1000
    let state = tally.state.withLock { $0 }
    return ConcurrencyResult(clients: clients, powerClients: powerCount, seconds: elapsed, reads: state.reads.count,
                             powerOps: state.power.count, errors: state.errors, firstErrors: state.firstErrors,
                             opsPerSecond: Double(state.reads.count + state.power.count) / elapsed,
                             readsPerSecond: Double(state.reads.count) / elapsed,
                             powerOpsPerSecond: Double(state.power.count) / elapsed,
                             readLatency: Summary(state.reads), powerLatency: Summary(state.power))
}

func vmmsConcurrency(clients: Int, seconds: Double, powerNames: [String]) async throws -> ConcurrencyResult {
    let bus = try DBusConnection(bus: .system)
    defer { bus.close() }
    let vms = try await bus.vmmsInventory()
    let byName = Dictionary(vms.map { ($0.name, $0.path) }, uniquingKeysWith: { a, _ in a })
    let powerTargets = try powerNames.map { name in
        guard let path = byName[name] else { throw BenchError("vmms has no VM \(name)") }
        return path
    }
    return try await runConcurrency(bus: .system, clients: clients, seconds: seconds, readTargets: vms.map(\.path),
                                    powerTargets: powerTargets,
                                    read: { bus, path in _ = try await bus.vmmsState(path) },
                                    power: { bus, path, pausing in try await bus.vmmsPower(path, pausing ? "Pause" : "Resume") })
}

func libvirtConcurrency(clients: Int, seconds: Double, powerNames: [String]) async throws -> ConcurrencyResult {
    let bus = try DBusConnection(bus: .system)
    defer { bus.close() }
    let paths = try await bus.libvirtDomains()
    var powerTargets: [ObjectPath] = []
    for name in powerNames { powerTargets.append(try await bus.libvirtLookup(name)) }
    return try await runConcurrency(bus: .system, clients: clients, seconds: seconds, readTargets: paths,
                                    powerTargets: powerTargets,
                                    read: { bus, path in _ = try await bus.libvirtState(path) },
                                    power: { bus, path, pausing in try await bus.libvirtPower(path, pausing ? "Suspend" : "Resume") })
}

/// What a user gets from libvirt-dbus: its bus policy admits only root and group libvirt.
struct ProbeResult: Codable, Sendable {
    var ok: Bool
    var error: String
}

func probeLibvirtDBus() async -> ProbeResult {
    do {
        let bus = try DBusConnection(bus: .system)
        defer { bus.close() }
        _ = try await bus.libvirtDomains()
        return ProbeResult(ok: true, error: "")
    } catch {
        return ProbeResult(ok: false, error: String(describing: error))
    }
}
