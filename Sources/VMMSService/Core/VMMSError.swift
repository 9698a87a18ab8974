import DBus
import Libvirt
import VMMSModel

/// Errors of the service's own vocabulary. Only `dbusError` turns them into the names of the
/// contract, in one exhaustive switch, so adding a case without a name does not compile.
public enum VMMSError: Error, Sendable, Equatable {
    case notAuthorized(String)
    case interactiveAuthorizationRequired(String)
    case invalidArgs(String)
    case notFound(String)
    case invalidState(current: String, message: String)
    case alreadyExists(String)
    case notSupported(String)
    case hypervisorUnavailable(String)
    case cancelled(String)
    case timeout(String)
    case insufficientResources(String)
    case failed(String)

    public static let prefix = "org.example.VMMS1.Error."

    public var dbusError: DBusError {
        switch self {
        case .notAuthorized(let m): DBusError(Self.prefix + "NotAuthorized", m)
        case .interactiveAuthorizationRequired(let m): DBusError(DBusError.Name.interactiveAuthorizationRequired, m)
        case .invalidArgs(let m): DBusError(DBusError.Name.invalidArgs, m)
        case .notFound(let m): DBusError(Self.prefix + "NotFound", m)
        case .invalidState(let current, let m): DBusError(Self.prefix + "InvalidState", "\(m) (current state: \(current))")
        case .alreadyExists(let m): DBusError(Self.prefix + "AlreadyExists", m)
        case .notSupported(let m): DBusError(Self.prefix + "NotSupported", m)
        case .hypervisorUnavailable(let m): DBusError(Self.prefix + "HypervisorUnavailable", m)
        case .cancelled(let m): DBusError(Self.prefix + "Cancelled", m)
        case .timeout(let m): DBusError(Self.prefix + "Timeout", m)
        case .insufficientResources(let m): DBusError(Self.prefix + "InsufficientResources", m)
        case .failed(let m): DBusError(Self.prefix + "Failed", m)
        }
    }

    /// libvirt's failures keep libvirt's text and code, as the contract asks.
    public init(_ error: LibvirtError) {
        if error.isConnectionBroken {
            self = .hypervisorUnavailable("libvirt connection lost: \(error.message) (libvirt error \(error.code) in \(error.function))")
        } else {
            self = .failed("\(error.message) (libvirt error \(error.code) in \(error.function))")
        }
    }
}

extension VMMSError {
    /// The model's refusals in the contract's vocabulary.
    init(_ error: VMModelError) {
        switch error {
        case .notFound(let m): self = .notFound(m)
        case .invalidState(let current, let m): self = .invalidState(current: current.rawValue, message: m)
        case .alreadyExists(let m): self = .alreadyExists(m)
        }
    }
}

/// Runs a handler body and converts whatever it throws into a `DBusError`, the only form the
/// object server sends.
func translatingErrors<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as VMMSError {
        throw error.dbusError
    } catch let error as VMModelError {
        throw VMMSError(error).dbusError
    } catch let error as LibvirtError {
        throw VMMSError(error).dbusError
    } catch let error as DBusError {
        throw error
    } catch {
        throw VMMSError.failed(String(describing: error)).dbusError
    }
}
