import Libvirt
import Logging

/// Something that must be set up on every new libvirt connection: event subscriptions and a
/// full reading of what it watches (VMs, later switches and SANs), the host's facts, the
/// recovery of interrupted operations.
protocol ConnectionWatcher: Sendable {
    /// Subscribes and reads; returns what must be kept alive while the connection is.
    func attach(_ connection: LibvirtConnection) async throws -> [any Sendable]
    /// The connection is gone (nothing to do by default).
    func detached()
}

extension ConnectionWatcher {
    func detached() {}
}

/// The service's link to libvirt as one explicit state machine:
///
/// ```
/// idle ─start→ connecting(g) ─ok→ connected(g) ─close callback(g)→ waiting(attempt) ─→ connecting(g+1) …
///                   │ └─close callback(g) meanwhile: lost, then waiting
///                   └─fail→ waiting(attempt+1)       any state ─stop→ stopped
/// ```
/// Each connection has a generation number; a close callback names its generation, so a late
/// close of an old connection cannot tear down a newer one, and a close that fires while the
/// connection is still being set up is not lost.
actor LinkLifecycle {
    enum State {
        case idle
        case connecting(generation: Int, lost: Bool)
        case connected(generation: Int, kept: [any Sendable])
        case waiting(attempt: Int)
        case stopped
    }

    private(set) var state: State = .idle
    private var generation = 0
    let link: HypervisorLink
    let watchers: [any ConnectionWatcher]
    let logger: Logger
    /// Told when the link goes up (true) or down (false).
    let onChange: @Sendable (Bool) -> Void

    init(link: HypervisorLink, watchers: [any ConnectionWatcher], logger: Logger, onChange: @escaping @Sendable (Bool) -> Void) {
        self.link = link
        self.watchers = watchers
        self.logger = logger
        self.onChange = onChange
    }

    /// Connects once; when that fails, keeps trying in the background. Returns whether the
    /// link is up.
    @discardableResult
    func start() async -> Bool {
        guard case .idle = state else { return isConnected }
        if await connect() { return true }
        scheduleReconnect(attempt: 1)
        return false
    }

    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    func stop() {
        state = .stopped
        let dropped = link.drop()
        withExtendedLifetime(dropped) {}
    }

    /// libvirt's close callback, on its event thread: hop onto the actor, never run libvirt
    /// teardown inside libvirt's own callback (it waits on locks the event thread holds).
    nonisolated func closed(generation: Int, reason: Int32) {
        Task { await self.lost(generation: generation, reason: reason) }
    }

    private func connect() async -> Bool {
        generation += 1
        let current = generation
        state = .connecting(generation: current, lost: false)
        var kept: [any Sendable] = []
        do {
            let connection = try await link.open { [weak self] reason in self?.closed(generation: current, reason: reason) }
            kept.append(connection)
            link.adopt(connection)
            for watcher in watchers { kept += try await watcher.attach(connection) }
        } catch {
            logger.debug("connecting to libvirt at \(link.uri) failed: \(error)")
            if case .connecting(current, _) = state { state = .idle }
            releaseLink()
            return false
        }
        switch state {
        case .connecting(current, lost: false):
            state = .connected(generation: current, kept: kept)
            onChange(true)
            return true
        case .connecting(current, lost: true):
            logger.warning("the libvirt connection closed while it was being set up; reconnecting")
            releaseLink()
            return false
        default:
            // Stopped meanwhile.
            releaseLink()
            return false
        }
    }

    private func lost(generation lostGeneration: Int, reason: Int32) {
        switch state {
        case .connecting(lostGeneration, _):
            state = .connecting(generation: lostGeneration, lost: true)
        case .connected(lostGeneration, let kept):
            logger.warning("lost the libvirt connection (reason \(reason)); reconnecting")
            state = .waiting(attempt: 0)
            releaseLink()
            onChange(false)
            withExtendedLifetime(kept) {}
            scheduleReconnect(attempt: 1)
        default:
            break
        }
    }

    private func releaseLink() {
        let dropped = link.drop()
        for watcher in watchers { watcher.detached() }
        withExtendedLifetime(dropped) {}
    }

    /// Retries with backoff (0.5 s doubling to 8 s) until libvirt answers again.
    private func scheduleReconnect(attempt: Int) {
        state = .waiting(attempt: attempt)
        let delay = min(Duration.milliseconds(500) * (1 << min(attempt - 1, 4)), .seconds(8))
        Task {
            try? await Task.sleep(for: delay)
            await self.retry(attempt: attempt)
        }
    }

    private func retry(attempt: Int) async {
        guard case .waiting(attempt) = state else { return }
        if await connect() {
            logger.info("reconnected to libvirt at \(link.uri)")
        } else if case .stopped = state {
            return
        } else {
            scheduleReconnect(attempt: attempt + 1)
        }
    }
}
