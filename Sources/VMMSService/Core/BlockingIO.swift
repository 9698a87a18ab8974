import Dispatch

/// File I/O that may block (fsync, rename, directory walks) runs here, one job after the
/// other on a thread of its own: never on the cooperative pool, and writes of the same file
/// never overlap.
enum BlockingIO {
    private static let queue = DispatchQueue(label: "vmms.io", qos: .userInitiated)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }
}
