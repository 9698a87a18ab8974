import Libvirt
import Synchronization

/// The libvirt connection, which may come and go as libvirtd restarts.
///
/// Every libvirt call goes through `run`, which fails with HypervisorUnavailable while there
/// is no connection, and runs the blocking call on the worker.
final class HypervisorLink: Sendable {
    let uri: String
    let worker: LibvirtWorker
    private let current = Mutex<LibvirtConnection?>(nil)
    /// Domain handles of the current connection by UUID (see `domain(uuid:on:)`).
    private let handles = Mutex<[String: LibvirtDomain]>([:])
    static let maximumHandles = 65_536

    init(uri: String, worker: LibvirtWorker) {
        self.uri = uri
        self.worker = worker
    }

    var isConnected: Bool { current.withLock { $0 != nil } }

    /// The connection, or HypervisorUnavailable.
    func connection() throws -> LibvirtConnection {
        guard let connection = current.withLock({ $0 }) else {
            throw VMMSError.hypervisorUnavailable("libvirt at \(uri) cannot be reached; vmmsd keeps trying to reconnect")
        }
        return connection
    }

    /// Runs `body` with the connection on the libvirt worker.
    func run<T: Sendable>(_ body: @escaping @Sendable (LibvirtConnection) throws -> T) async throws -> T {
        let connection = try connection()
        return try await worker.run { try body(connection) }
    }

    /// Runs `body`, which may take minutes, with the connection on the long-operation worker.
    func runLong<T: Sendable>(_ body: @escaping @Sendable (LibvirtConnection) throws -> T) async throws -> T {
        let connection = try connection()
        return try await worker.runLong { try body(connection) }
    }

    /// Opens a new connection (blocking, on the worker); `onClose` learns when libvirt closes
    /// it. The connection is not current until `adopt`.
    func open(onClose: @escaping @Sendable (Int32) -> Void) async throws -> LibvirtConnection {
        let uri = self.uri
        return try await worker.runConnect { () -> LibvirtConnection in
            let connection = try LibvirtConnection(uri: uri)
            // Keepalive lets libvirt notice a libvirtd that died or froze without closing the
            // socket; drivers without a daemon (test://) do not support it.
            _ = try? connection.setKeepAlive(interval: 5, count: 3)
            try connection.onClose(onClose)
            return connection
        }
    }

    /// Makes `connection` the one calls use.
    func adopt(_ connection: LibvirtConnection) {
        handles.withLock { $0 = [:] }
        current.withLock { $0 = connection }
    }

    /// The domain with `uuid` on `connection` (blocking: call on the worker). Looking one up is
    /// a round trip to libvirtd, as long as the call itself, so handles are kept: libvirtd
    /// finds a handle's domain by its UUID, so it stays good while the domain exists, and
    /// calls on one whose domain went fail with NO_DOMAIN as a fresh lookup would. Forgotten
    /// with the connection and on the domain's defined/undefined events (`forgetDomain`),
    /// since a rename changes the name a handle carries.
    func domain(uuid: String, on connection: LibvirtConnection) throws -> LibvirtDomain {
        let isCurrent = current.withLock { $0 === connection }
        if isCurrent, let domain = handles.withLock({ $0[uuid] }) { return domain }
        let domain = try connection.domain(uuid: uuid)
        if isCurrent {
            handles.withLock { if $0.count < Self.maximumHandles { $0[uuid] = domain } }
        }
        return domain
    }

    func forgetDomain(uuid: String) {
        _ = handles.withLock { $0.removeValue(forKey: uuid) }
    }

    /// Forgets the current connection and returns it (for its owner to release off libvirt's
    /// event thread).
    func drop() -> LibvirtConnection? {
        handles.withLock { $0 = [:] }
        return current.withLock { current in
            defer { current = nil }
            return current
        }
    }
}
