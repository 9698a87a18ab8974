internal import CLibvirt
import Synchronization

/// One handler registered with `LibvirtConnection.registerDomainEvents`,
/// `registerNetworkEvents` or `registerStoragePoolEvents`. Keep it alive for as long as events
/// should arrive; `deregister()` or releasing it stops them. Holds its connection open.
public final class EventRegistration: Sendable {
    private let remove: @Sendable () -> Void

    init(remove: @escaping @Sendable () -> Void) {
        self.remove = remove
    }

    deinit {
        deregister()
    }

    /// Stops delivery to this handler; an event already being delivered may still arrive.
    /// Idempotent. When the last handler of its kind on the connection goes, the libvirt
    /// callbacks are removed too; failures then (e.g. the connection already broke, which
    /// drops them anyway) are ignored. Wraps `virConnectDomainEventDeregisterAny`,
    /// `virConnectNetworkEventDeregisterAny` and `virConnectStoragePoolEventDeregisterAny`.
    public func deregister() {
        remove()
    }
}

/// One family of libvirt events (domain, network, storage pool): how its C callbacks are
/// registered with and removed from a connection.
protocol EventFamily: Sendable {
    associatedtype Event: Sendable
    /// Registers every C callback of the family with `hub` as the opaque pointer (use
    /// `EventHub.registerEach`) and returns libvirt's callback IDs.
    static func register(connection: OpaquePointer, hub: EventHub<Self>) throws(LibvirtError) -> [Int32]
    /// Removes one registered callback (the family's `…DeregisterAny`).
    static func deregister(connection: OpaquePointer, callbackID: Int32) -> Int32
}

/// Fans one connection's events of one family out to the Swift handlers.
///
/// libvirt refuses a second registration of the same C callback for the same event on one
/// connection ("event callback already tracked"), so each connection registers its callbacks
/// once, with the hub as their opaque pointer, and the hub keeps the list of handlers.
final class EventHub<Family: EventFamily>: Sendable {
    typealias Handler = @Sendable (Family.Event) -> Void

    private struct State {
        var handlers: [UInt64: Handler] = [:]
        var nextToken: UInt64 = 0
        /// libvirt's callback IDs; empty while no handler is registered.
        var callbackIDs: [Int32] = []
    }

    private let state = Mutex(State())

    /// Adds a handler, registering the libvirt callbacks first if this is the first one, and
    /// returns the registration that removes it. Either every event kind of the family is
    /// registered with libvirt or none.
    func add(_ handler: @escaping Handler, connection: LibvirtConnection) throws(LibvirtError) -> EventRegistration {
        let token = try state.withLock { (state: inout State) throws(LibvirtError) -> UInt64 in
            if state.callbackIDs.isEmpty {
                state.callbackIDs = try Family.register(connection: connection.handle, hub: self)
            }
            let token = state.nextToken
            state.nextToken += 1
            state.handlers[token] = handler
            return token
        }
        return EventRegistration { [self] in remove(token: token, connection: connection) }
    }

    /// Removes a handler, and the libvirt callbacks with the last one.
    private func remove(token: UInt64, connection: LibvirtConnection) {
        state.withLock { state in
            guard state.handlers.removeValue(forKey: token) != nil, state.handlers.isEmpty else { return }
            deregister(state.callbackIDs, connection: connection.handle)
            state.callbackIDs = []
        }
    }

    /// Called on the event-loop thread; libvirt does not hold its own locks meanwhile, so a
    /// handler may register or deregister.
    func dispatch(_ event: Family.Event) {
        let handlers = state.withLock { Array($0.handlers.values) }
        for handler in handlers { handler(event) }
    }

    /// Registers each `(eventID, callback)` through `register` (the family's
    /// `…EventRegisterAny`, named `function`), this hub retained once per registration as the
    /// opaque pointer; on a failure removes those already registered and throws.
    func registerEach<Callback>(
        _ callbacks: [(Int32, Callback)], function: String, connection: OpaquePointer,
        register: (OpaquePointer, Int32, Callback, UnsafeMutableRawPointer, virFreeCallback) -> Int32
    ) throws(LibvirtError) -> [Int32] {
        var ids: [Int32] = []
        for (eventID, callback) in callbacks {
            // One retain per registration: libvirt calls the free callback once for each.
            let opaque = Unmanaged.passRetained(self).toOpaque()
            let id = register(connection, eventID, callback, opaque, releaseEventHub)
            if id < 0 {
                let error = LibvirtError.last(function: function)
                // libvirt does not call the free callback when registration fails.
                Unmanaged<EventHub>.fromOpaque(opaque).release()
                deregister(ids, connection: connection)
                throw error
            }
            ids.append(id)
        }
        return ids
    }

    private func deregister(_ ids: [Int32], connection: OpaquePointer) {
        for id in ids where Family.deregister(connection: connection, callbackID: id) < 0 {
            virResetLastError()
        }
    }

    /// The hub behind a callback's opaque pointer (not retained).
    static func from(_ opaque: UnsafeMutableRawPointer) -> EventHub {
        Unmanaged<EventHub>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// libvirt's free callback for the reference `registerEach` passed as opaque pointer; one
/// non-generic C function for every hub type.
private let releaseEventHub: virFreeCallback = { opaque in
    guard let opaque else { return }
    Unmanaged<AnyObject>.fromOpaque(opaque).release()
}
