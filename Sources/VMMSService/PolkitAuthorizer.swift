import DBus
import Logging
import Polkit
import Synchronization

/// Authorizes calls with polkit, as systemd's machined and udisks2 do.
///
/// How one check goes:
/// 1. The subject is the caller's unique bus name: polkitd asks the bus daemon for the uid
///    and pid behind it itself, so nothing the caller claims is trusted.
/// 2. The details (`verb`, `vm.name`, `vm.uuid`, `switch.name`) travel with the check; polkit
///    only accepts details from uid 0, which is why rules can rely on them to delegate a VM.
/// 3. Interaction is requested only when the message carries ALLOW_INTERACTIVE_AUTHORIZATION.
///    polkit answers "challenge" when it would have asked for a password: without the flag
///    that becomes `InteractiveAuthorizationRequired`, telling the client to retry with it.
/// 4. Callers with uid 0 are allowed without asking, like sd-bus's privileged-sender check;
///    polkit would say yes anyway, and root's calls should not depend on polkitd being up.
/// 5. When polkitd cannot be reached everybody else is refused, with a log line saying why.
///
/// Reads (`org.example.vmms1.read`) that polkit allowed are remembered for `readGrantLifetime`
/// per caller connection and object: property reads come in bursts (a GUI refresh, a
/// `GetAll` per object) and must cost about as much as a `Ping`. Refusals are never cached,
/// so a new grant takes effect at once; a revoked read grant lasts at most the lifetime.
/// Every other action is checked on every call.
public final class PolkitAuthorizer: Authorizer {
    public static let readGrantLifetime: Duration = .seconds(30)

    private let authority = Mutex<PolkitAuthority?>(nil)
    private let readGrants = Mutex<[ReadGrantKey: ContinuousClock.Instant]>([:])
    private let logger: Logger

    struct ReadGrantKey: Hashable {
        var sender: String
        var object: String
    }

    public init(logger: Logger) {
        self.logger = logger
    }

    public func authorize(_ call: MethodCall, _ action: Action, _ details: AuthorizationDetails) async throws {
        let key = ReadGrantKey(sender: call.sender, object: details.vmUUID ?? details.switchName ?? "")
        if action == .read, let until = readGrants.withLock({ $0[key] }), until > .now { return }

        let uid: UInt32
        do {
            uid = try await call.callerUID()
        } catch {
            throw VMMSError.notAuthorized("cannot identify the caller \(call.sender): \(error)")
        }
        if uid == 0 { return }

        let result: PolkitResult
        do {
            let authority = try connectedAuthority()
            result = try await authority.check(subject: .systemBusName(call.sender), actionID: action.rawValue,
                                               details: details.dictionary,
                                               allowUserInteraction: call.allowsInteractiveAuthorization,
                                               timeout: call.allowsInteractiveAuthorization ? .seconds(300) : .seconds(25))
        } catch {
            logger.error("polkit is unreachable, refusing \(action.rawValue) for uid \(uid) (\(call.sender)): \(error)")
            throw VMMSError.notAuthorized("polkit is not available to authorize \(action.rawValue); only root may act now")
        }
        switch result.decision {
        case .authorized:
            if action == .read { remember(key) }
        case .challenge where !call.allowsInteractiveAuthorization:
            throw VMMSError.interactiveAuthorizationRequired(
                "\(action.rawValue) needs authentication; call again allowing interactive authorization")
        case .challenge, .notAuthorized:
            throw VMMSError.notAuthorized("uid \(uid) is not authorized for \(action.rawValue)")
        }
    }

    private func remember(_ key: ReadGrantKey) {
        readGrants.withLock { grants in
            // Unique names are never reused, so old entries only cost memory; drop them in bulk.
            if grants.count > 10_000 { grants = grants.filter { $0.value > .now } }
            grants[key] = .now + Self.readGrantLifetime
        }
    }

    /// polkit's authority object, created on first use and again after a failure, so that a
    /// polkitd started after us is picked up.
    private func connectedAuthority() throws -> PolkitAuthority {
        try authority.withLock { authority in
            if let authority { return authority }
            let created = try PolkitAuthority()
            authority = created
            return created
        }
    }
}
