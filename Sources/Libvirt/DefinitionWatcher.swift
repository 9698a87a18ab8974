import Foundation
import Glibc
import Synchronization

/// Watches the directory where a local libvirt driver keeps its persistent definitions
/// (`/etc/libvirt/qemu` for `qemu:///system`) and reports which definition files changed.
///
/// libvirt 9.0 announces no event for some definition changes: `virsh setvcpus NAME 2
/// --config`, `virsh setmaxmem NAME 128M --config` and `virsh autostart` rewrite the file and
/// say nothing. libvirt rewrites a definition as `NAME.xml.new` and renames it over
/// `NAME.xml`; autostart is a symlink `autostart/NAME.xml`. The watcher reports the domain
/// name of every such change, on a thread of its own blocked in `poll(2)`, never on the
/// cooperative pool. Wraps `inotify_init1` and `inotify_add_watch`.
public final class DefinitionWatcher: Sendable {
    private let inotifyFD: Int32
    private let wakeFD: (read: Int32, write: Int32)
    private let stopped = Mutex(false)

    /// The definitions directory of `uri` on this machine, or nil when it has none this
    /// process can watch (remote and test drivers, or a directory that does not exist).
    public static func directory(for uri: String) -> String? {
        let directory: String
        switch uri {
        case "qemu:///system": directory = "/etc/libvirt/qemu"
        case "qemu:///session":
            guard let home = ProcessInfo.processInfo.environment["HOME"] else { return nil }
            directory = home + "/.config/libvirt/qemu"
        default: return nil
        }
        var info = stat()
        return stat(directory, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR ? directory : nil
    }

    /// Starts watching `directory` (and its `autostart/` folder); `changed` receives a domain
    /// name each time its definition or autostart link changes.
    public init(directory: String, changed: @escaping @Sendable (String) -> Void) throws(LibvirtError) {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw Self.failure("inotify_init1") }
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            close(fd)
            throw Self.failure("pipe")
        }
        for end in pipeFDs { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_CREATE)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            let error = Self.failure("inotify_add_watch \(directory)")
            close(fd); close(pipeFDs[0]); close(pipeFDs[1])
            throw error
        }
        // Autostart links come and go in a folder of their own (which may appear later).
        _ = inotify_add_watch(fd, directory + "/autostart", mask)
        inotifyFD = fd
        wakeFD = (pipeFDs[0], pipeFDs[1])
        let thread = Thread { [inotifyFD, wakeFD] in
            Self.run(inotifyFD: inotifyFD, wakeFD: wakeFD.read, changed: changed)
            close(inotifyFD)
            close(wakeFD.read)
        }
        thread.name = "vmms-defwatch"
        thread.start()
    }

    deinit { stop() }

    /// Ends the watch; the thread closes its descriptors on the way out. Idempotent.
    public func stop() {
        let already = stopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !already else { return }
        var one: UInt8 = 1
        _ = write(wakeFD.write, &one, 1)
        close(wakeFD.write)
    }

    private static func run(inotifyFD: Int32, wakeFD: Int32, changed: @Sendable (String) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            var fds = [pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 { if errno == EINTR { continue }; return }
            if fds[1].revents != 0 { return }
            let count = buffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
            guard count > 0 else { continue }
            for name in names(in: buffer, count: count) {
                // `NAME.xml` (not `NAME.xml.new`, libvirt's temporary file).
                guard name.hasSuffix(".xml"), name.count > 4 else { continue }
                changed(String(name.dropLast(4)))
            }
        }
    }

    /// The file names of the `inotify_event` records in `buffer[0..<count]`.
    static func names(in buffer: [UInt8], count: Int) -> [String] {
        var names: [String] = []
        var offset = 0
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= count {
            let length = buffer.withUnsafeBytes { raw in
                Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            }
            let start = offset + header
            let end = min(start + length, count)
            if length > 0, start < end {
                let bytes = buffer[start..<end].prefix { $0 != 0 }
                names.append(String(decoding: bytes, as: UTF8.self))
            }
            offset = start + length
        }
        return names
    }

    private static func failure(_ what: String) -> LibvirtError {
        LibvirtError.wrapper("\(what): \(String(cString: strerror(errno)))", function: what)
    }
}
