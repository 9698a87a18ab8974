import DBus
import Synchronization

/// One bus connection, made on first use and made again after the bus dropped it.
///
/// Connecting runs on a thread of its own (`DBusConnection.connect`); callers that arrive
/// meanwhile wait for the same attempt instead of starting their own.
final class BusLink: Sendable {
    let bus: DBusConnection.Bus
    let maxPendingReplies: Int
    /// How long one attempt may take; the bus daemon is local, so this only matters when it hangs.
    static let connectTimeout: Duration = .seconds(10)

    private enum State {
        case idle
        case connecting(Task<DBusConnection, any Error>)
        case connected(DBusConnection)
        case closed
    }
    private let state = Mutex<State>(.idle)

    init(bus: DBusConnection.Bus, maxPendingReplies: Int) {
        self.bus = bus
        self.maxPendingReplies = maxPendingReplies
    }

    deinit { close() }

    /// The connection, connecting first if there is none.
    func connection() async throws(PolkitError) -> DBusConnection {
        enum Next { case ready(DBusConnection), wait(Task<DBusConnection, any Error>) }
        let next = try state.withLock { state throws(PolkitError) -> Next in
            switch state {
            case .connected(let connection):
                return .ready(connection)
            case .connecting(let attempt):
                return .wait(attempt)
            case .closed:
                throw PolkitError(.unreachable, "the polkit authority was closed", method: "connect")
            case .idle:
                let (bus, slots) = (bus, maxPendingReplies)
                let attempt = Task { try await DBusConnection.connect(bus, maxPendingReplies: slots, timeout: Self.connectTimeout) }
                state = .connecting(attempt)
                return .wait(attempt)
            }
        }
        let attempt: Task<DBusConnection, any Error>
        switch next {
        case .ready(let connection): return connection
        case .wait(let pending): attempt = pending
        }
        do {
            let connection = try await attempt.value
            let closedMeanwhile = state.withLock { state -> Bool in
                switch state {
                case .connecting(let current) where current == attempt: state = .connected(connection)
                case .closed: return true
                default: break
                }
                return false
            }
            if closedMeanwhile { connection.close() }
            return connection
        } catch {
            state.withLock { state in
                if case .connecting(let current) = state, current == attempt { state = .idle }
            }
            let reason = (error as? DBusError).map { PolkitError($0, method: "connect") }
            throw reason ?? PolkitError(.unreachable, "cannot connect to the system bus: \(error)", method: "connect")
        }
    }

    /// Forgets `connection` after the bus dropped it, so the next call connects again.
    func drop(_ connection: DBusConnection) {
        state.withLock { state in
            if case .connected(let current) = state, current === connection { state = .idle }
        }
        connection.close()
    }

    func close() {
        let previous = state.withLock { state in
            defer { state = .closed }
            return state
        }
        switch previous {
        case .connected(let connection): connection.close()
        case .connecting(let attempt): attempt.cancel()
        case .idle, .closed: break
        }
    }
}
