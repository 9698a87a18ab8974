import Glibc
import Synchronization

/// A Unix file descriptor with exactly one owner, which closes it when the last reference goes.
///
/// Every descriptor this module receives (`h` values in a message body) arrives as a new
/// descriptor the process must close; wrapping it here at once means a decoded value that is
/// dropped — a call refused for its signature, an ignored argument, a reply nobody reads — can
/// never leak it. Sending borrows: libdbus duplicates the descriptor into the message, so the
/// owner keeps its own. Equality and hashing are by identity: two owners are never the same
/// descriptor.
public final class UnixFileDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// The descriptor, or -1 once closed or taken.
    private let fd: Mutex<Int32>

    /// Takes ownership of `fd`; it is closed when this object goes away.
    public init(adopting fd: Int32) {
        self.fd = Mutex(fd)
    }

    /// A new owner of a duplicate of `fd`, which the caller keeps. Wraps `fcntl(F_DUPFD_CLOEXEC)`.
    public static func duplicating(_ fd: Int32) throws(DBusError) -> UnixFileDescriptor {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw DBusError.failed("cannot duplicate file descriptor \(fd): \(String(cString: strerror(errno)))") }
        return UnixFileDescriptor(adopting: copy)
    }

    deinit { close() }

    /// The descriptor number while it is open, or nil. Only valid while `self` is alive and open.
    public var rawValue: Int32? {
        fd.withLock { $0 >= 0 ? $0 : nil }
    }

    /// Runs `body` with the open descriptor, which stays open (no concurrent `close` or `take`)
    /// until `body` returns; nil when it is already closed.
    public func withDescriptor<T>(_ body: (Int32) throws -> T) rethrows -> T? {
        try fd.withLock { fd in fd >= 0 ? try body(fd) : nil }
    }

    /// Hands the descriptor to the caller, who must close it; nil when already closed or taken.
    public func take() -> Int32? {
        fd.withLock { fd in
            defer { fd = -1 }
            return fd >= 0 ? fd : nil
        }
    }

    /// Closes the descriptor now rather than at deinit. Wraps `close(2)`.
    public func close() {
        if let fd = take() { _ = Glibc.close(fd) }
    }

    public static func == (lhs: UnixFileDescriptor, rhs: UnixFileDescriptor) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
    public var description: String { rawValue.map { "fd \($0)" } ?? "closed fd" }
}
