import Synchronization
import VMMSModel

/// The host's state in memory: what libvirt said about the hypervisor, and the persisted
/// settings. Reads take a lock, never a libvirt round trip.
public final class HostModel: Sendable {
    private let state: Mutex<(info: HostInfo, settings: HostSettings)>

    public init(info: HostInfo, settings: HostSettings) {
        state = Mutex((info, settings))
    }

    public var info: HostInfo { state.withLock { $0.info } }
    public var settings: HostSettings { state.withLock { $0.settings } }

    /// Replaces the hypervisor facts; returns true when anything changed.
    @discardableResult
    public func update(_ change: (inout HostInfo) -> Void) -> (old: HostInfo, new: HostInfo) {
        state.withLock { s in
            let old = s.info
            change(&s.info)
            return (old, s.info)
        }
    }

    public func setSettings(_ settings: HostSettings) { state.withLock { $0.settings = settings } }
}
