internal import CLibvirt
import Foundation
import Synchronization

/// libvirt's default event loop, run on one dedicated thread for the life of the process.
///
/// Events (domain lifecycle, close callbacks, keepalive) are only delivered while an event
/// loop runs, and the implementation must be registered before the connections that use it
/// are opened. Wraps `virEventRegisterDefaultImpl` and `virEventRunDefaultImpl`.
public enum LibvirtEventLoop {
    private static let started = Mutex<Bool>(false)

    /// Registers libvirt's default event implementation and starts a thread that runs it
    /// forever. Safe to call more than once and from any thread: later calls do nothing.
    /// Call it before opening any `LibvirtConnection` whose events you want.
    /// Wraps `virEventRegisterDefaultImpl`.
    public static func start() throws {
        try started.withLock { (isStarted: inout Bool) throws(LibvirtError) in
            guard !isStarted else { return }
            LibvirtRuntime.ensureInitialized()
            try check("virEventRegisterDefaultImpl") { virEventRegisterDefaultImpl() }
            // A real thread, not a task: virEventRunDefaultImpl blocks in poll() and would
            // otherwise starve a cooperative-pool thread forever.
            let thread = Thread {
                while true {
                    if virEventRunDefaultImpl() < 0 {
                        // Nothing useful to do with the error here; avoid a hot spin.
                        virResetLastError()
                        usleep(10_000)
                    }
                }
            }
            thread.name = "libvirt-event-loop"
            thread.start()
            isStarted = true
        }
    }

    /// Whether `start()` has completed successfully in this process.
    public static var isRunning: Bool { started.withLock { $0 } }
}
