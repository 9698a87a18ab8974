import Foundation
import Glibc

/// A textual polkit agent for this process, as systemctl starts one: `pkttyagent` asks for the
/// password on our terminal when the service's polkit check needs it.
///
/// It registers for this process (`--process`), not for a login session, so it also works
/// where logind does not run; `--fallback` leaves an agent the session already has in charge.
/// `--notify-fd` tells us when it is registered, so the retried call does not race it.
final class PolkitAgent {
    static let executable = "/usr/bin/pkttyagent"
    private let pid: pid_t

    /// Starts the agent and waits (at most 10 s) until it is registered. nil when pkttyagent
    /// is not installed or did not come up; the call then fails as it would without one.
    init?() {
        guard access(Self.executable, X_OK) == 0 else { return nil }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        defer { close(readEnd) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let notifyFD: Int32 = 3
        posix_spawn_file_actions_adddup2(&actions, writeEnd, notifyFD)
        let arguments = [Self.executable, "--process", String(getpid()), "--notify-fd", String(notifyFD), "--fallback"]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, Self.executable, &actions, nil, argv, environ)
        close(writeEnd)
        guard rc == 0 else { return nil }
        pid = child

        // The agent closes (or writes to) the descriptor once it is registered.
        var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        var byte: UInt8 = 0
        let ready = poll(&poller, 1, 10_000) > 0 && read(readEnd, &byte, 1) >= 0
        // An agent that closed the descriptor by exiting did not register.
        var status: Int32 = 0
        if waitpid(child, &status, WNOHANG) == child { return nil }
        if !ready {
            stop()
            return nil
        }
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}
