/// What the host object publishes: the hypervisor's facts and the persisted settings.
public struct HostRecord: Sendable, Equatable {
    public var info: HostInfo
    public var settings: HostSettings

    public init(info: HostInfo, settings: HostSettings) {
        self.info = info
        self.settings = settings
    }
}

/// The host in memory, one record whose changes reach the sink in order. Reads take a lock,
/// never a libvirt round trip.
public final class HostModel: Sendable {
    private let store: ObjectStore<Int, HostRecord>

    /// The record is added (and so published) at once.
    public init(_ record: HostRecord, sink: @escaping ChangeSink<HostRecord>) {
        store = ObjectStore(sink: sink)
        store.set(0, record)
    }

    public var record: HostRecord {
        // Set in init and never removed.
        store[0] ?? HostRecord(info: HostInfo(connectionURI: ""), settings: .defaults)
    }

    public var info: HostInfo { record.info }
    public var settings: HostSettings { record.settings }

    /// Changes the record in one step.
    public func update(_ change: (inout HostRecord) -> Void) {
        store.update { batch in
            guard var record = batch[0] else { return }
            change(&record)
            batch[0] = record
        }
    }
}
