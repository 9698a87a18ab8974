import DBus
import Synchronization

/// polkitd's authority (`org.freedesktop.PolicyKit1.Authority` at
/// `/org/freedesktop/PolicyKit1/Authority` on the system bus), asked over our own D-Bus
/// connections: a check that waits — for polkitd, or for a user to type a password — holds no
/// thread, only a pending reply.
///
/// The bus lets one connection wait for at most `max_replies_per_connection` replies (128 on
/// the system bus), so checks are split and bounded:
/// - non-interactive checks use one connection with at most `Limits.checksInFlight` awaiting
///   polkitd at once; the excess waits in that connection's queue, each within its own timeout;
/// - interactive checks (which may wait minutes for a password) use a second connection, so
///   they can never take the places of the quick ones, and at most
///   `Limits.interactivePerUser` of one user and `Limits.interactiveTotal` in all may be
///   pending; beyond that a check fails at once with `.tooManyPending`.
/// A check that times out or whose task is cancelled is withdrawn with
/// `CancelCheckAuthorization`, which also ends the authentication dialog. A dropped bus
/// connection is made again on the next check.
public final class PolkitAuthority: Sendable {
    public struct Limits: Sendable, Hashable {
        public var checksInFlight: Int
        public var interactivePerUser: Int
        public var interactiveTotal: Int

        public init(checksInFlight: Int = 64, interactivePerUser: Int = 4, interactiveTotal: Int = 32) {
            self.checksInFlight = max(1, checksInFlight)
            self.interactivePerUser = max(1, interactivePerUser)
            self.interactiveTotal = max(1, interactiveTotal)
        }
    }

    public static let busName = "org.freedesktop.PolicyKit1"
    public static let objectPath: ObjectPath = "/org/freedesktop/PolicyKit1/Authority"
    public static let interface = "org.freedesktop.PolicyKit1.Authority"

    public let limits: Limits
    let checks: BusLink
    let interactiveChecks: BusLink
    private let pendingInteractive = Mutex<(total: Int, byUser: [UInt32?: Int])>((0, [:]))
    private let nextCancellationID = Atomic<UInt64>(0)

    /// Connects on the first check, not here, so creating an authority never blocks or fails.
    public init(bus: DBusConnection.Bus = .system, limits: Limits = Limits()) {
        self.limits = limits
        checks = BusLink(bus: bus, maxPendingReplies: limits.checksInFlight)
        // Cancellations are sent without expecting replies, so they take no places.
        interactiveChecks = BusLink(bus: bus, maxPendingReplies: limits.interactiveTotal)
    }

    /// Closes both connections; later checks fail with `.unreachable`.
    public func close() {
        checks.close()
        interactiveChecks.close()
    }

    /// Asks polkitd whether `subject` may perform `actionID`.
    ///
    /// - Parameters:
    ///   - subject: who is asking, normally the D-Bus sender of the call being authorized.
    ///   - actionID: a polkit action such as `"org.example.vmms1.read"`.
    ///   - details: key/value pairs passed to rules and shown in the authentication dialog
    ///     (polkitd accepts them from uid 0 only).
    ///   - allowUserInteraction: let polkitd ask the user to authenticate (flag
    ///     `AllowUserInteraction`); without it a possible authentication is reported as
    ///     `isChallenge`.
    ///   - user: whose interactive checks this one counts against; defaults to the uid a
    ///     `.unixProcess` subject names.
    ///   - timeout: the most the check may take, time queued included; it is then withdrawn
    ///     and fails with `.noAnswer`. Zero or less fails at once.
    /// - Throws: `PolkitError`; a refusal is a result, not an error.
    ///
    /// Calls `org.freedesktop.PolicyKit1.Authority.CheckAuthorization`, and
    /// `CancelCheckAuthorization` when the check is withdrawn.
    public func check(subject: PolkitSubject, actionID: String, details: [String: String] = [:],
                      allowUserInteraction: Bool = false, user: UInt32? = nil,
                      timeout: Duration = .seconds(25)) async throws(PolkitError) -> PolkitResult {
        guard timeout > .zero else { throw PolkitError(.noAnswer, "the check's timeout (\(timeout)) has already passed") }
        let deadline = ContinuousClock.now + timeout
        let subjectValue = try subject.dbusValue()
        let body: (String) -> [DBusValue] = { cancellationID in
            [subjectValue, .string(actionID), Self.detailsValue(details), .uint32(allowUserInteraction ? 1 : 0),
             .string(cancellationID)]
        }
        guard allowUserInteraction else {
            // A check polkitd never saw (the connection was already gone) is asked once more on a
            // new connection.
            do {
                return try await ask(body, on: checks, until: deadline)
            } catch let error where error.code == .unreachable && error.dbusName == DBusError.Name.disconnected {
                return try await ask(body, on: checks, until: deadline)
            }
        }
        let owner = user ?? subject.uid
        try reserveInteractive(for: owner)
        defer { releaseInteractive(for: owner) }
        return try await ask(body, on: interactiveChecks, until: deadline)
    }

    /// One `CheckAuthorization` exchange on `link`.
    private func ask(_ body: (String) -> [DBusValue], on link: BusLink,
                     until deadline: ContinuousClock.Instant) async throws(PolkitError) -> PolkitResult {
        let cancellationID = "vmms-\(nextCancellationID.add(1, ordering: .relaxed).newValue)"
        let message: DBusMessage
        do {
            message = try DBusMessage.methodCall(destination: Self.busName, path: Self.objectPath, interface: Self.interface,
                                                 member: "CheckAuthorization", body: body(cancellationID))
        } catch {
            throw PolkitError(.invalidArgument, "cannot build the check: \(error.message)")
        }
        let connection = try await link.connection()
        let reply: DBusMessage
        do {
            reply = try await connection.sendWithReply(message, timeout: ContinuousClock.now.duration(to: deadline))
        } catch let error as DBusError {
            if error.name == DBusError.Name.noReply { withdraw(cancellationID, on: connection) }
            if error.name == DBusError.Name.disconnected { link.drop(connection) }
            throw PolkitError(error, method: "CheckAuthorization")
        } catch {
            withdraw(cancellationID, on: connection)
            throw PolkitError(.cancelled, "the calling task was cancelled")
        }
        if let error = reply.asError {
            throw PolkitError(error, method: "CheckAuthorization", fromPolkitd: reply.sender != "org.freedesktop.DBus")
        }
        guard let result = PolkitResult(replyBody: reply.body) else {
            throw PolkitError(.failed, "polkitd answered with (\(reply.signature)), not ((bba{ss}))")
        }
        return result
    }

    /// Withdraws a check polkitd may still be working on (and closes its authentication
    /// dialog). Sent without expecting a reply: it takes no reply place, and polkitd's answer
    /// to the check itself frees the check's place.
    private func withdraw(_ cancellationID: String, on connection: DBusConnection) {
        guard let message = try? DBusMessage.methodCall(destination: Self.busName, path: Self.objectPath, interface: Self.interface,
                                                        member: "CancelCheckAuthorization", body: [.string(cancellationID)]) else { return }
        message.expectsReply = false
        // Never start polkitd just to tell it to forget a check.
        message.autoStart = false
        connection.send(message)
    }

    static func detailsValue(_ details: [String: String]) -> DBusValue {
        .dictionary(key: "s", value: "s", details.sorted { $0.key < $1.key }.map { .init(.string($0.key), .string($0.value)) })
    }

    // MARK: Interactive bounds

    private func reserveInteractive(for user: UInt32?) throws(PolkitError) {
        let refusal = pendingInteractive.withLock { pending -> String? in
            let mine = pending.byUser[user, default: 0]
            if mine >= limits.interactivePerUser {
                return "\(user.map { "uid \($0)" } ?? "this caller") already has \(mine) authentication requests waiting for an answer, "
                    + "the most one user may have; answer or dismiss them first"
            }
            if pending.total >= limits.interactiveTotal {
                return "\(pending.total) authentication requests are waiting for an answer, the most the service keeps; try again later"
            }
            pending.total += 1
            pending.byUser[user] = mine + 1
            return nil
        }
        if let refusal { throw PolkitError(.tooManyPending, refusal) }
    }

    private func releaseInteractive(for user: UInt32?) {
        pendingInteractive.withLock { pending in
            pending.total -= 1
            let mine = pending.byUser[user, default: 1] - 1
            pending.byUser[user] = mine > 0 ? mine : nil
        }
    }

    /// Interactive checks pending now (for tests and diagnostics).
    public var interactiveChecksPending: Int { pendingInteractive.withLock { $0.total } }
}
