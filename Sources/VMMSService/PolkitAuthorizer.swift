import DBus
import Logging
import Polkit
import Synchronization

/// Authorizes calls with polkit, as systemd's machined and udisks2 do.
///
/// How one check goes:
/// 1. The subject is the caller's unique bus name, `("system-bus-name", {"name": <":1.42">})`:
///    polkitd asks the bus daemon for the uid and pid behind it itself, so nothing the caller
///    claims is trusted.
/// 2. The details (`verb`, `vm.name`, `vm.uuid`, `switch.name`) travel with the check; polkit
///    only accepts details from uid 0, which is why rules can rely on them to delegate a VM.
/// 3. The check is `org.freedesktop.PolicyKit1.Authority.CheckAuthorization(subject, action,
///    details, flags, cancellation id)`, sent over our own system-bus connection: while polkitd
///    thinks (or a user types a password) the check holds no thread, only a pending reply.
///    A check that runs out of time is withdrawn with `CancelCheckAuthorization`.
/// 4. Interaction (flag 1, AllowUserInteraction) is requested only when the message carries
///    ALLOW_INTERACTIVE_AUTHORIZATION. polkit answers "challenge" when it would have asked for a
///    password: without the flag that becomes `InteractiveAuthorizationRequired`, telling the
///    client to retry with it. Interactive checks go over a second connection, so that
///    password dialogs nobody answers never delay anyone else's checks; at most
///    `PolkitAuthority.Limits.interactivePerUser` of one user (and `interactiveTotal` in all)
///    may wait at once, and more are refused with `LimitsExceeded`.
/// 5. Callers with uid 0 are allowed without asking, like sd-bus's privileged-sender check;
///    polkit would say yes anyway, and root's calls should not depend on polkitd being up.
/// 6. When polkitd cannot be reached, or does not answer in time, everybody else is refused,
///    with a log line saying which of the two happened.
///
/// Reads (`org.example.vmms1.read`) that polkit allowed are remembered for `readGrantLifetime`
/// per caller connection and object: property reads come in bursts (a GUI refresh, a
/// `GetAll` per object) and must cost about as much as a `Ping`. Refusals are never cached,
/// so a new grant takes effect at once; a revoked read grant lasts at most the lifetime.
/// Every other action is checked on every call.
///
/// A caller allowed to read the host (a host-level read: Host properties, GetManagedObjects)
/// needs no second check to read one VM: GetManagedObjects already hands it every property
/// of every VM, so a per-VM check could refuse nothing it cannot read anyway. Its VM reads
/// pass on the host grant, and the first read of an object by a caller with no grant yet asks
/// polkit about the host read (no object details, no interaction) before the object's own:
/// one check then covers every VM the caller reads. Callers who are not host readers (a user a
/// rule gives one VM) are then checked per VM with `vm.name` and `vm.uuid`, so per-VM
/// delegation works as before, at the price of that one extra check per object and 30 s.
public final class PolkitAuthorizer: Authorizer {
    public static let readGrantLifetime: Duration = .seconds(30)
    /// How long polkitd may take to answer a check that asks nobody anything.
    public static let checkTimeout: Duration = .seconds(25)
    /// How long a user may take to authenticate; the dialog is then withdrawn.
    public static let interactiveCheckTimeout: Duration = .seconds(300)

    private let authority: PolkitAuthority
    private let readGrants = Mutex<[ReadGrantKey: ContinuousClock.Instant]>([:])
    private let logger: Logger

    struct ReadGrantKey: Hashable {
        var sender: String
        var object: String
    }

    public init(logger: Logger, authority: PolkitAuthority = PolkitAuthority()) {
        self.logger = logger
        self.authority = authority
    }

    /// Root, or a read grant still valid for the object or the host: what `authorize` would
    /// allow without asking polkit.
    public func allowsReadAtOnce(sender: String, uid: UInt32?, _ details: AuthorizationDetails) -> Bool {
        uid == 0 || hasReadGrant(sender: sender, details)
    }

    private func hasReadGrant(sender: String, _ details: AuthorizationDetails) -> Bool {
        let key = ReadGrantKey(sender: sender, object: details.vmUUID ?? details.switchName ?? "")
        let hostKey = ReadGrantKey(sender: sender, object: "")
        let now = ContinuousClock.now
        return readGrants.withLock { grants in
            (grants[key].map { $0 > now } ?? false) || (grants[hostKey].map { $0 > now } ?? false)
        }
    }

    public func authorize(_ call: MethodCall, _ action: Action, _ details: AuthorizationDetails) async throws {
        let key = ReadGrantKey(sender: call.sender, object: details.vmUUID ?? details.switchName ?? "")
        if action == .read, hasReadGrant(sender: call.sender, details) { return }

        let uid: UInt32
        do {
            uid = try await call.callerUID()
        } catch {
            throw VMMSError.notAuthorized("cannot identify the caller \(call.sender): \(error)")
        }
        if uid == 0 { return }

        let interactive = call.allowsInteractiveAuthorization
        if action == .read, !key.object.isEmpty {
            // A host reader may read every object (see above): ask that first, without
            // interaction, so one check covers every VM this caller goes on to read.
            let host = AuthorizationDetails(verb: details.verb)
            if try await check(call, .read, host, uid: uid, interactive: false).decision == .authorized {
                remember(ReadGrantKey(sender: call.sender, object: ""))
                return
            }
        }
        let result = try await check(call, action, details, uid: uid, interactive: interactive)
        switch result.decision {
        case .authorized:
            if action == .read { remember(key) }
        case .challenge where !interactive:
            throw VMMSError.interactiveAuthorizationRequired(
                "\(action.rawValue) needs authentication; call again allowing interactive authorization")
        case .challenge, .notAuthorized:
            throw VMMSError.notAuthorized("uid \(uid) is not authorized for \(action.rawValue)")
        }
    }

    private func check(_ call: MethodCall, _ action: Action, _ details: AuthorizationDetails, uid: UInt32,
                       interactive: Bool) async throws -> PolkitResult {
        do {
            return try await authority.check(subject: .systemBusName(call.sender), actionID: action.rawValue,
                                             details: details.dictionary, allowUserInteraction: interactive, user: uid,
                                             timeout: interactive ? Self.interactiveCheckTimeout : Self.checkTimeout)
        } catch {
            throw refusal(error, action, uid: uid, sender: call.sender)
        }
    }

    /// The reply for a check that got no answer, logged once here.
    private func refusal(_ error: PolkitError, _ action: Action, uid: UInt32, sender: String) -> any Error {
        let who = "uid \(uid) (\(sender))"
        switch error.code {
        case .tooManyPending:
            logger.warning("refusing \(action.rawValue) for \(who): \(error.message)")
            return DBusError(DBusError.Name.limitsExceeded, error.message)
        case .unreachable:
            logger.error("polkitd is not reachable, refusing \(action.rawValue) for \(who): \(error)")
            return VMMSError.notAuthorized("polkit is not running, so \(action.rawValue) cannot be authorized; only root may act now")
        case .noAnswer:
            logger.error("polkitd did not answer in time, refusing \(action.rawValue) for \(who): \(error)")
            return VMMSError.notAuthorized("polkit did not answer in time, so \(action.rawValue) cannot be authorized; only root may act now")
        case .cancelled:
            return VMMSError.notAuthorized("the authorization check for \(action.rawValue) was cancelled")
        case .failed, .invalidArgument:
            logger.error("polkitd could not check \(action.rawValue) for \(who): \(error)")
            return VMMSError.notAuthorized("polkit could not check \(action.rawValue): \(error.message)")
        }
    }

    private func remember(_ key: ReadGrantKey) {
        readGrants.withLock { grants in
            // Unique names are never reused, so old entries only cost memory; drop them in bulk.
            if grants.count > 10_000 { grants = grants.filter { $0.value > .now } }
            grants[key] = .now + Self.readGrantLifetime
        }
    }
}
