import Synchronization

/// Records of one kind by key, with every change handed to a sink in order.
///
/// The simple models (the host, switches, SANs, jobs) are one of these; the VM model has more
/// state of its own but publishes the same `StoreChange`s.
public final class ObjectStore<Key: Hashable & Sendable, Record: Sendable & Equatable>: Sendable {
    private let records = Mutex<[Key: Record]>([:])
    private let sink: ChangeSink<Record>

    public init(sink: @escaping ChangeSink<Record>) {
        self.sink = sink
    }

    public subscript(key: Key) -> Record? { records.withLock { $0[key] } }

    public var all: [Record] { records.withLock { Array($0.values) } }

    public var keys: [Key] { records.withLock { Array($0.keys) } }

    /// Changes the records in one step; the changes reach the sink before the lock is released.
    /// Writing an equal record is no change.
    @discardableResult
    public func update<T>(_ body: (inout Batch) throws -> T) rethrows -> T {
        try records.withLock { records in
            var batch = Batch(records: records)
            let result = try body(&batch)
            records = batch.records
            if !batch.changes.isEmpty { sink(batch.changes) }
            return result
        }
    }

    /// Sets (nil: removes) one record.
    public func set(_ key: Key, _ record: Record?) {
        update { $0[key] = record }
    }

    /// The records as a change in progress sees them.
    public struct Batch {
        public fileprivate(set) var records: [Key: Record]
        public fileprivate(set) var changes: [StoreChange<Record>] = []

        init(records: [Key: Record]) { self.records = records }

        public subscript(key: Key) -> Record? {
            get { records[key] }
            set {
                switch (records[key], newValue) {
                case (nil, let new?): changes.append(.added(new))
                case (let old?, let new?) where old != new: changes.append(.updated(old: old, new: new))
                case (let old?, nil): changes.append(.removed(old))
                default: return
                }
                records[key] = newValue
            }
        }
    }
}
