/// What a Checkpoint object publishes.
public struct CheckpointRecord: Sendable, Equatable {
    public var vmUUID: String
    public var id: String
    public var name: String
    /// The parent's name; nil for a root.
    public var parentName: String?
    public var creationTime: UInt64
    public var includesMemory: Bool

    public init(vmUUID: String, id: String, name: String, parentName: String?, creationTime: UInt64, includesMemory: Bool) {
        self.vmUUID = vmUUID
        self.id = id
        self.name = name
        self.parentName = parentName
        self.creationTime = creationTime
        self.includesMemory = includesMemory
    }

    /// The records of every checkpoint of `tree`, in creation order.
    public static func records(of tree: CheckpointTree) -> [CheckpointRecord] {
        tree.checkpoints.map { entry in
            CheckpointRecord(vmUUID: tree.vmUUID, id: entry.id, name: entry.name,
                             parentName: entry.parent.flatMap { tree.entry(id: $0)?.name },
                             creationTime: entry.creationTime, includesMemory: entry.memory != nil)
        }
    }
}

/// The published checkpoints of every VM. The object path follows the name, so a rename is
/// a removal and an addition (in one batch, removal first).
public final class CheckpointModel: Sendable {
    private let store: ObjectStore<String, CheckpointRecord>

    public init(sink: @escaping ChangeSink<CheckpointRecord>) {
        store = ObjectStore(sink: sink)
    }

    private static func key(_ uuid: String, _ id: String) -> String { uuid + "/" + id }

    public func record(vm uuid: String, named name: String) -> CheckpointRecord? {
        store.all.first { $0.vmUUID == uuid && $0.name == name }
    }

    public func records(vm uuid: String) -> [CheckpointRecord] { store.all.filter { $0.vmUUID == uuid } }

    /// Publishes `tree` (nil: the VM has no checkpoints any more).
    public func replace(vm uuid: String, with tree: CheckpointTree?) {
        let fresh = tree.map(CheckpointRecord.records(of:)) ?? []
        store.update { batch in
            let freshKeys = Set(fresh.map { Self.key(uuid, $0.id) })
            for key in batch.records.keys where key.hasPrefix(uuid + "/") && !freshKeys.contains(key) { batch[key] = nil }
            for record in fresh {
                let key = Self.key(uuid, record.id)
                if let old = batch[key], old.name != record.name { batch[key] = nil }
                batch[key] = record
            }
        }
    }
}
