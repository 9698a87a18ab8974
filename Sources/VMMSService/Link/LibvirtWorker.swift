import Dispatch
import Libvirt

/// Runs blocking libvirt calls on threads of its own, never on Swift's cooperative pool, so a
/// slow libvirtd cannot starve the tasks that answer the bus.
public final class LibvirtWorker: Sendable {
    private let queue = DispatchQueue(label: "vmms.libvirt", qos: .userInitiated, attributes: .concurrent)

    public init() {}

    /// Runs `body` on a worker thread. libvirt's last error is per thread, so `body` must read
    /// it in the same synchronous call, which the Libvirt module does.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }
}
