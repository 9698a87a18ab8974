import Foundation
import Glibc

/// A textual polkit agent for this process, as systemctl and run0 start one: `pkttyagent`
/// asks for the password on our terminal when the service's polkit check needs it.
///
/// It registers for this process (`--process`), not for a login session, so it also works
/// where logind does not run. Not with `--fallback` (systemctl's choice, so a desktop's
/// graphical agent wins): polkit 122 only falls back to such an agent after finding the
/// caller's session, and without logind there is none, so a fallback agent is never asked.
/// `--notify-fd` tells us when it is registered, so the retried call does not race it.
final class PolkitAgent {
    static let executable = "/usr/bin/pkttyagent"
    private let pid: pid_t
    private var running = true

    /// Starts the agent and waits (at most 10 s) until it is registered. nil when pkttyagent
    /// is not installed or did not come up; the call then fails as it would without one.
    init?() {
        guard access(Self.executable, X_OK) == 0 else { return nil }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        // Both ends close-on-exec: the agent keeps only the copy dup2 makes as its fd 3, so
        // the pipe reads end-of-file once the agent closes that one.
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        defer { close(readEnd) }

        let notifyFD: Int32 = 3
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, notifyFD)

        // The calling thread blocks signals (Swift's runtime threads do); the agent must
        // start with none blocked, or SIGTERM would never end it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let arguments = [Self.executable, "--process", String(getpid()), "--notify-fd", String(notifyFD)]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, Self.executable, &actions, &attributes, argv, environ)
        close(writeEnd)
        guard rc == 0 else { return nil }
        pid = child

        // The agent closes (or writes to) the descriptor once it is registered.
        var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        var byte: UInt8 = 0
        let ready = poll(&poller, 1, 10_000) > 0 && read(readEnd, &byte, 1) >= 0
        // An agent that closed the descriptor by exiting did not register.
        var status: Int32 = 0
        if waitpid(child, &status, WNOHANG) == child {
            running = false
            return nil
        }
        if !ready {
            stop()
            return nil
        }
    }

    /// SIGTERM, and SIGKILL if it is still there after 2 s.
    func stop() {
        guard running else { return }
        running = false
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<200 {
            if waitpid(pid, &status, WNOHANG) != 0 { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}
