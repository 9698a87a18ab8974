import DBus
import Polkit
import Synchronization
import TestSupport

/// polkitd's Authority interface on a private bus, answering as a test tells it to and
/// recording what it was sent, like udisks' fake polkitd.
final class FakePolkitd: DBusInterface, ObjectTree {
    enum Behaviour: Sendable {
        case answer(PolkitResult)
        /// Hold checks (interactive ones only, or all) until `release()` or their withdrawal.
        case hold(interactiveOnly: Bool, then: PolkitResult)
        case fail(DBusError)
        case malformed
    }

    struct Check: Sendable {
        var subject: DBusValue
        var actionID: String
        var details: DBusValue
        var flags: UInt32
        var cancellationID: String
    }

    private struct State {
        var behaviour: Behaviour
        var checks: [Check] = []
        var cancellations: [String] = []
        var held: [String: CheckedContinuation<Bool, Never>] = [:]
        var maxHeld = 0
    }

    let description = InterfaceDescription(name: PolkitAuthority.interface, methods: [
        .init("CheckAuthorization", in: [.init("subject", "(sa{sv})"), .init("action_id", "s"), .init("details", "a{ss}"),
                                         .init("flags", "u"), .init("cancellation_id", "s")],
              out: [.init("result", "(bba{ss})")]),
        .init("CancelCheckAuthorization", in: [.init("cancellation_id", "s")]),
    ])
    private let state: Mutex<State>
    let bus: PrivateBus
    private let connection: DBusConnection

    init(_ behaviour: Behaviour = .answer(PolkitResult(isAuthorized: true, isChallenge: false))) async throws {
        state = Mutex(State(behaviour: behaviour))
        bus = try PrivateBus()
        connection = try bus.connect()
        // The authority may send a withdrawal while its checks fill a sender's share.
        _ = ObjectServer(connection: connection, objectManagerPath: "/org/freedesktop/PolicyKit1", tree: self,
                         limits: .init(perSender: 10_000, total: 10_000))
        try await connection.requestName(PolkitAuthority.busName)
    }

    func stop() { connection.close() }

    func authority(_ limits: PolkitAuthority.Limits = .init()) -> PolkitAuthority {
        PolkitAuthority(bus: .address(bus.address), limits: limits)
    }

    var checks: [Check] { state.withLock { $0.checks } }
    var cancellations: [String] { state.withLock { $0.cancellations } }
    var heldNow: Int { state.withLock { $0.held.count } }
    var mostHeldAtOnce: Int { state.withLock { $0.maxHeld } }

    func setBehaviour(_ behaviour: Behaviour) { state.withLock { $0.behaviour = behaviour } }

    /// Answers every held check and stops holding new ones.
    func release() {
        let held = state.withLock { state in
            if case .hold(_, let result) = state.behaviour { state.behaviour = .answer(result) }
            defer { state.held.removeAll() }
            return Array(state.held.values)
        }
        for waiter in held { waiter.resume(returning: false) }
    }

    /// Waits (bounded) until `condition` holds.
    func waitUntil(_ condition: @Sendable (FakePolkitd) -> Bool) async throws {
        for _ in 0..<500 where !condition(self) { try await Task.sleep(for: .milliseconds(10)) }
    }

    // MARK: ObjectTree

    func interfaces(at path: ObjectPath) async -> [any DBusInterface]? { path == PolkitAuthority.objectPath ? [self] : nil }
    func objectPaths() async -> [ObjectPath] { [PolkitAuthority.objectPath] }
    func authorizeRead(_ call: MethodCall) async throws {}

    // MARK: DBusInterface

    func properties() async -> [String: DBusValue] { [:] }

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        let args = call.arguments
        if call.member == "CancelCheckAuthorization" {
            let id = args[0].string ?? ""
            state.withLock { $0.cancellations.append(id); return $0.held.removeValue(forKey: id) }?.resume(returning: true)
            return []
        }
        let check = Check(subject: args[0], actionID: args[1].string ?? "", details: args[2], flags: args[3].uint32 ?? 0,
                          cancellationID: args[4].string ?? "")
        let behaviour = state.withLock { state in
            state.checks.append(check)
            return state.behaviour
        }
        switch behaviour {
        case .answer(let result):
            return Self.reply(result)
        case .fail(let error):
            throw error
        case .malformed:
            return [.boolean(true)]
        case .hold(let interactiveOnly, let result):
            if interactiveOnly && check.flags & 1 == 0 { return Self.reply(result) }
            if await hold(check.cancellationID) {
                throw DBusError("org.freedesktop.PolicyKit1.Error.Cancelled", "Authorization request was cancelled")
            }
            return Self.reply(result)
        }
    }

    /// True when the check was withdrawn; false when released (or after 20 s, so no test hangs).
    private func hold(_ id: String) async -> Bool {
        let timer = Task { [self] in
            try await Task.sleep(for: .seconds(20))
            state.withLock { $0.held.removeValue(forKey: id) }?.resume(returning: false)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let answerNow = state.withLock { state -> Bool in
                if case .answer = state.behaviour { return true }
                if state.cancellations.contains(id) { return true }
                state.held[id] = continuation
                state.maxHeld = max(state.maxHeld, state.held.count)
                return false
            }
            if answerNow { continuation.resume(returning: cancellations.contains(id)) }
        }
    }

    static func reply(_ result: PolkitResult) -> [DBusValue] {
        [.structure([.boolean(result.isAuthorized), .boolean(result.isChallenge),
                     .dictionary(key: "s", value: "s", result.details.sorted { $0.key < $1.key }.map { .init(.string($0.key), .string($0.value)) })])]
    }
}
