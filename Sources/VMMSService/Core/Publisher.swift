import DBus
import Synchronization
import VMMSModel

/// Turns the models' typed changes into D-Bus signals, in the order they happened, and keeps
/// what it published: reads (Get, GetAll, GetManagedObjects) are answered from here, so they
/// always agree with the signals a client has seen.
///
/// Models call `publish` inside their own lock; the publisher takes its own lock, updates the
/// published view and queues the signal before returning, so the signals leave in change
/// order per object and across objects, and an object is either there with all its
/// properties or not at all. After InterfacesRemoved nothing more is sent from that path.
final class Publisher: Sendable {
    private struct State {
        var objects: [ObjectPath: [String: [String: DBusValue]]] = [:]
        /// The members of each list property of the host (`VirtualMachines` …).
        var lists: [String: Set<ObjectPath>] = [:]
    }

    let emitter: SignalEmitter
    let hostPath: ObjectPath
    let hostInterface: String
    private let state: Mutex<State>

    /// `hostLists`: the host's properties that list the objects of a kind.
    init(emitter: SignalEmitter, hostPath: ObjectPath, hostInterface: String, hostLists: [String]) {
        self.emitter = emitter
        self.hostPath = hostPath
        self.hostInterface = hostInterface
        var initial = State()
        for list in hostLists { initial.lists[list] = [] }
        state = Mutex(initial)
    }

    /// The sink a model of `kind` hands its changes to.
    func sink<K: ObjectKind>(for kind: K.Type) -> ChangeSink<K.Record> {
        { [self] changes in publish(kind, changes) }
    }

    func publish<K: ObjectKind>(_ kind: K.Type, _ changes: [StoreChange<K.Record>]) {
        let interface = K.interface.name
        state.withLock { s in
            var listChanged = false
            for change in changes {
                let path = K.path(of: change.record)
                switch change {
                case .added(let record), .updated(_, let record):
                    var values = K.values(of: record)
                    if path == hostPath { values.merge(listValues(s)) { $1 } }
                    if var object = s.objects[path] {
                        let before = object[interface] ?? [:]
                        let changed = values.filter { before[$0.key] != $0.value }
                        object[interface] = values
                        s.objects[path] = object
                        if !changed.isEmpty {
                            emitter.emitPropertiesChanged(path: path, interface: interface, changed: changed)
                        }
                    } else {
                        s.objects[path] = [interface: values]
                        emitter.emitInterfacesAdded(path: path, interfaces: [interface: values])
                        if let list = K.hostList { listChanged = s.lists[list, default: []].insert(path).inserted || listChanged }
                    }
                case .removed:
                    guard let object = s.objects.removeValue(forKey: path) else { continue }
                    emitter.emitInterfacesRemoved(path: path, interfaces: object.keys.sorted())
                    if let list = K.hostList, s.lists[list]?.remove(path) != nil { listChanged = true }
                }
            }
            // One announcement of the list per batch: a start-up listing of 1000 VMs sends one,
            // not one per VM (each carries the whole list).
            if listChanged, let list = K.hostList, var host = s.objects[hostPath]?[hostInterface] {
                let value = DBusValue.objectPaths((s.lists[list] ?? []).sorted())
                host[list] = value
                s.objects[hostPath]?[hostInterface] = host
                emitter.emitPropertiesChanged(path: hostPath, interface: hostInterface, changed: [list: value])
            }
        }
    }

    /// Emits another signal of a published object (Job.Completed) in order with its changes;
    /// nothing when the object is not (or no longer) published.
    func signal(path: ObjectPath, interface: String, member: String, _ body: [DBusValue]) {
        state.withLock { s in
            guard s.objects[path] != nil else { return }
            try? emitter.emit(path: path, interface: interface, member: member, body)
        }
    }

    private func listValues(_ s: State) -> [String: DBusValue] {
        s.lists.mapValues { .objectPaths($0.sorted()) }
    }

    // MARK: Reads

    func properties(at path: ObjectPath, interface: String) -> [String: DBusValue]? {
        state.withLock { $0.objects[path]?[interface] }
    }

    func contains(_ path: ObjectPath) -> Bool { state.withLock { $0.objects[path] != nil } }

    var paths: [ObjectPath] { state.withLock { Array($0.objects.keys) } }

    func managedObjects(below root: ObjectPath) -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])] {
        state.withLock { s in
            s.objects.compactMap { $0.key.isDescendant(of: root) ? ($0.key, $0.value) : nil }
        }.sorted { $0.path < $1.path }
    }

    /// The objects listed by one of the host's list properties.
    func members(of list: String) -> [ObjectPath] { state.withLock { ($0.lists[list] ?? []).sorted() } }
}
