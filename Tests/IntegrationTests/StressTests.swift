import DBus
import Foundation
import Synchronization
import TestSupport
import Testing

/// 32 client connections mixing creates, renames, power operations, setters, deletes and
/// reads on a few shared VMs, plus clients that disconnect mid-call. Every reply is a success
/// or a contract error (never a timeout, never a bare Failed), the service stays up, and a
/// subscriber's view rebuilt from the signals equals GetManagedObjects at the end.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct StressTests {
    static let vmInterface = "org.example.VMMS1.VM"
    static let props = "org.freedesktop.DBus.Properties"
    static let manager = "org.freedesktop.DBus.ObjectManager"
    static let host: ObjectPath = "/org/example/VMMS1/Host"
    static let contractErrors: Set<String> = [
        "org.example.VMMS1.Error.InvalidState", "org.example.VMMS1.Error.NotFound",
        "org.example.VMMS1.Error.AlreadyExists", "org.freedesktop.DBus.Error.InvalidArgs",
        "org.example.VMMS1.Error.Timeout", "org.example.VMMS1.Error.InsufficientResources",
    ]

    /// What the clients saw, by outcome.
    final class Tally: Sendable {
        let outcomes = Mutex<[String: Int]>([:])
        let unexpected = Mutex<[String]>([])
        func record(_ call: String, _ result: Result<Void, any Error>) {
            switch result {
            case .success: outcomes.withLock { $0["ok", default: 0] += 1 }
            case .failure(let error as DBusError) where StressTests.contractErrors.contains(error.name):
                outcomes.withLock { $0[error.name, default: 0] += 1 }
            case .failure(let error):
                unexpected.withLock { if $0.count < 20 { $0.append("\(call): \(error)") } }
            }
        }
    }

    /// Objects and properties as a client rebuilds them from the signals.
    final class View: Sendable {
        let objects = Mutex<[ObjectPath: [String: [String: DBusValue]]]>([:])
        func load(_ managed: DBusValue?) {
            guard case .dictionary(_, _, let entries)? = managed else { return }
            objects.withLock { objects in
                objects = [:]
                for entry in entries {
                    guard let path = entry.key.objectPath else { continue }
                    objects[path] = View.interfaces(entry.value)
                }
            }
        }
        static func interfaces(_ value: DBusValue) -> [String: [String: DBusValue]] {
            guard case .dictionary(_, _, let entries) = value else { return [:] }
            var result: [String: [String: DBusValue]] = [:]
            for entry in entries {
                if let name = entry.key.string { result[name] = entry.value.stringKeyedDictionary ?? [:] }
            }
            return result
        }
        func apply(_ signal: DBusMessage) {
            let body = signal.body
            objects.withLock { objects in
                switch signal.member {
                case "InterfacesAdded":
                    guard let path = body.first?.objectPath, body.count == 2 else { return }
                    objects[path, default: [:]].merge(View.interfaces(body[1])) { $1 }
                case "InterfacesRemoved":
                    guard let path = body.first?.objectPath else { return }
                    objects[path] = nil
                case "PropertiesChanged":
                    guard let path = signal.path, let interface = body.first?.string,
                          let changed = body.dropFirst().first?.stringKeyedDictionary, objects[path] != nil else { return }
                    objects[path]?[interface, default: [:]].merge(changed) { $1 }
                default: return
                }
            }
        }
    }

    // Bounded by its own 25 s of load and each call's 60 s deadline.
    @Test
    func thirtyTwoClientsLeaveTheServiceUpAndTheSignalledViewRight() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let prefix = Names.unique("st")
            let admin = try DBusConnection(bus: .system)
            defer { admin.close() }
            func call(_ bus: DBusConnection, _ path: ObjectPath, _ interface: String, _ member: String,
                      _ body: [DBusValue] = []) async throws -> [DBusValue] {
                try await bus.call(destination: "org.example.VMMS1", path: path, interface: interface, member: member, body,
                                   timeout: .seconds(60))
            }
            func create(_ bus: DBusConnection, _ name: String) async throws -> ObjectPath {
                let reply = try await call(bus, Self.host, "org.example.VMMS1.Host", "CreateVM",
                                           [.string(name), .vardict(["Generation": .uint32(1), "MemoryStartupBytes": .uint64(32 << 20)])])
                guard let path = reply.first?.objectPath else { throw TestFailure("CreateVM: \(reply)") }
                return path
            }
            // The subscriber: every signal of the service, then the inventory.
            let subscriber = try DBusConnection(bus: .system)
            defer { subscriber.close() }
            let signals = try await subscriber.signals(matching: MatchRule(sender: "org.example.VMMS1"))
            let view = View()
            let buffered = Mutex<[DBusMessage]>([])
            let loaded = Mutex(false)
            let collector = Task {
                for await signal in signals {
                    let apply = loaded.withLock { done -> Bool in
                        if !done { buffered.withLock { $0.append(signal) } }
                        return done
                    }
                    if apply { view.apply(signal) }
                }
            }
            defer { collector.cancel() }

            var shared: [ObjectPath] = []
            for i in 0..<4 { shared.append(try await create(admin, "\(prefix)-s\(i)")) }
            let initial = try await call(subscriber, "/org/example/VMMS1", Self.manager, "GetManagedObjects").first
            loaded.withLock { done in
                view.load(initial)
                buffered.withLock { pending in pending.forEach(view.apply); pending.removeAll() }
                done = true
            }

            let tally = Tally()
            let deadline = ContinuousClock.now + .seconds(25)
            let names = (0..<6).map { "\(prefix)-n\($0)" }
            let vms = shared
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<32 {
                    group.addTask {
                        var generator = SystemRandomNumberGenerator()
                        let bus = try DBusConnection(bus: .system)
                        defer { bus.close() }
                        while ContinuousClock.now < deadline {
                            let vm = vms.randomElement(using: &generator) ?? vms[0]
                            switch worker % 8 {
                            case 0, 1:   // readers
                                let result = await Result { _ = try await call(bus, vm, Self.props, "GetAll", [.string(Self.vmInterface)]) }
                                tally.record("GetAll", result)
                                if Int.random(in: 0..<10, using: &generator) == 0 {
                                    tally.record("GetManagedObjects", await Result { _ = try await call(bus, "/org/example/VMMS1", Self.manager, "GetManagedObjects") })
                                }
                            case 2, 3:   // power
                                let method = ["Start", "TurnOff", "Pause", "Resume", "Save", "Shutdown", "Reset"].randomElement(using: &generator) ?? "Start"
                                let body: [DBusValue] = method == "Shutdown" ? [.vardict(["TimeoutSeconds": .uint32(1), "Force": .boolean(true)])] : []
                                tally.record(method, await Result { _ = try await call(bus, vm, Self.vmInterface, method, body) })
                            case 4:      // renames into a small set of names, so they clash
                                let name = names.randomElement(using: &generator) ?? names[0]
                                tally.record("Rename", await Result { _ = try await call(bus, vm, Self.vmInterface, "Rename", [.string(name)]) })
                            case 5:      // create and delete VMs of their own, with clashing names
                                let name = names.randomElement(using: &generator) ?? names[0]
                                var created: ObjectPath?
                                tally.record("CreateVM", await Result { created = try await create(bus, name + "-c") })
                                if let created {
                                    tally.record("Delete", await Result { _ = try await call(bus, created, Self.vmInterface, "Delete", [.vardict(["Force": .boolean(true)])]) })
                                }
                            case 6:      // setters
                                let result: Result<Void, any Error> = Int.random(in: 0..<2, using: &generator) == 0
                                    ? await Result { _ = try await call(bus, vm, Self.props, "Set", [.string(Self.vmInterface), .string("Notes"), .variant(.string("w\(worker)"))]) }
                                    : await Result { _ = try await call(bus, vm, Self.vmInterface, "SetMemory", [.uint64(UInt64(Int.random(in: 1...2, using: &generator)) * (32 << 20)), .vardict([:])]) }
                                tally.record("Set", result)
                            default:     // disconnect mid-call
                                let quitter = try DBusConnection(bus: .system)
                                let message = try DBusMessage.methodCall(destination: "org.example.VMMS1", path: vm, interface: Self.vmInterface,
                                                                         member: ["Start", "Pause", "Save"].randomElement(using: &generator) ?? "Start")
                                quitter.send(message)
                                try await Task.sleep(for: .milliseconds(Int.random(in: 0..<20, using: &generator)))
                                quitter.close()
                                try await Task.sleep(for: .milliseconds(50))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }

            // Alive, answering, and no call ended in a timeout or a bare Failed.
            #expect(service.process.exitStatusIfExited() == nil, "vmmsd died: \(service.log.suffix(2000))")
            _ = try await call(admin, Self.host, "org.freedesktop.DBus.Peer", "Ping")
            let outcomes = tally.outcomes.withLock { $0 }
            #expect((outcomes["ok"] ?? 0) > 100, "\(outcomes)")
            let unexpected = tally.unexpected.withLock { $0 }
            #expect(unexpected.isEmpty, "\(unexpected)")

            // Quiet: every operation has ended; let the last signals arrive.
            try await Task.sleep(for: .seconds(2))
            let final = try await call(admin, "/org/example/VMMS1", Self.manager, "GetManagedObjects").first
            let truth = View()
            truth.load(final)
            let rebuilt = view.objects.withLock { $0 }, expected = truth.objects.withLock { $0 }
            #expect(Set(rebuilt.keys) == Set(expected.keys), "paths differ")
            for (path, interfaces) in expected where rebuilt[path] != interfaces {
                let mine = rebuilt[path] ?? [:]
                let differing = interfaces.flatMap { name, values in
                    values.filter { mine[name]?[$0.key] != $0.value }.map { "\(name).\($0.key): signals \(String(describing: mine[name]?[$0.key])) vs \($0.value)" }
                }
                Issue.record("\(path): \(differing)")
            }

            // Clean up every VM this test made, by its prefix.
            let listed = try await virsh(["list", "--all", "--name"]).stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            for name in listed where name.hasPrefix(prefix) {
                _ = try await virsh(["destroy", name])
                _ = try await virsh(["undefine", "--managed-save", name])
            }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
