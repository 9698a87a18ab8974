internal import CLibvirt

/// The kind of a storage pool lifecycle event, mirroring `virStoragePoolEventLifecycleType`.
public enum StoragePoolLifecycleEvent: Int32, Sendable, CaseIterable {
    /// A persistent definition was added or changed (`VIR_STORAGE_POOL_EVENT_DEFINED`).
    case defined = 0
    /// The persistent definition was removed (`VIR_STORAGE_POOL_EVENT_UNDEFINED`).
    case undefined = 1
    /// The pool was started (`VIR_STORAGE_POOL_EVENT_STARTED`).
    case started = 2
    /// The pool was stopped (`VIR_STORAGE_POOL_EVENT_STOPPED`).
    case stopped = 3
    /// The pool's backing storage was built (`VIR_STORAGE_POOL_EVENT_CREATED`).
    case created = 4
    /// The pool's backing storage was deleted (`VIR_STORAGE_POOL_EVENT_DELETED`).
    case deleted = 5
}

/// Something that happened to a storage pool. Delivered to
/// `LibvirtConnection.registerStoragePoolEvents`.
public enum StoragePoolEvent: Sendable, Equatable {
    /// The pool was defined, started, stopped…; `event` is a `StoragePoolLifecycleEvent` raw
    /// value (kept raw so values of newer libvirt versions still arrive), `detail` libvirt's
    /// detail (0 in libvirt 9.0). (`VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE`)
    case lifecycle(uuid: String, name: String, event: Int32, detail: Int32)
    /// The pool was refreshed (its volume list re-read). (`VIR_STORAGE_POOL_EVENT_ID_REFRESH`)
    case refresh(uuid: String, name: String)

    /// The pool's lowercase UUID.
    public var uuid: String {
        switch self {
        case .lifecycle(let uuid, _, _, _), .refresh(let uuid, _): uuid
        }
    }

    /// The pool's name.
    public var name: String {
        switch self {
        case .lifecycle(_, let name, _, _), .refresh(_, let name): name
        }
    }

    /// For `.lifecycle`, the typed event kind (nil for `.refresh` or unknown values).
    public var lifecycleEvent: StoragePoolLifecycleEvent? {
        if case .lifecycle(_, _, let event, _) = self { return StoragePoolLifecycleEvent(rawValue: event) }
        return nil
    }
}

extension LibvirtConnection {
    /// Registers `handler` for the lifecycle and refresh events of every storage pool of this
    /// connection; it runs on the event-loop thread (see `registerDomainEvents`). Needs
    /// `LibvirtEventLoop.start()` before this connection was opened.
    /// Wraps `virConnectStoragePoolEventRegisterAny`.
    public func registerStoragePoolEvents(_ handler: @escaping @Sendable (StoragePoolEvent) -> Void) throws -> EventRegistration {
        try storagePoolEvents.add(handler, connection: self)
    }
}

// MARK: - C callback plumbing

/// Storage pool events: lifecycle and refresh.
enum StoragePoolEventFamily: EventFamily {
    typealias Event = StoragePoolEvent

    static func register(connection: OpaquePointer, hub: EventHub<StoragePoolEventFamily>) throws(LibvirtError) -> [Int32] {
        let lifecycle: virConnectStoragePoolEventLifecycleCallback = { _, pool, event, detail, opaque in
            deliver(pool, opaque) { .lifecycle(uuid: $0, name: $1, event: event, detail: detail) }
        }
        let refresh: virConnectStoragePoolEventGenericCallback = { _, pool, opaque in
            deliver(pool, opaque) { .refresh(uuid: $0, name: $1) }
        }
        let callbacks: [(Int32, virConnectStoragePoolEventGenericCallback)] = [
            (cInt(VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE),
             unsafeBitCast(lifecycle, to: virConnectStoragePoolEventGenericCallback.self)),
            (cInt(VIR_STORAGE_POOL_EVENT_ID_REFRESH), refresh),
        ]
        return try hub.registerEach(callbacks, function: "virConnectStoragePoolEventRegisterAny",
                                    connection: connection) { connection, eventID, callback, opaque, free in
            virConnectStoragePoolEventRegisterAny(connection, nil, eventID, callback, opaque, free)
        }
    }

    static func deregister(connection: OpaquePointer, callbackID: Int32) -> Int32 {
        virConnectStoragePoolEventDeregisterAny(connection, callbackID)
    }
}

/// Builds the event from the pool's UUID and name and passes it to the hub's handlers.
private func deliver(_ pool: OpaquePointer?, _ opaque: UnsafeMutableRawPointer?,
                     _ make: (String, String) -> StoragePoolEvent) {
    guard let pool, let opaque,
          let uuid = try? uuidString("virStoragePoolGetUUIDString", { virStoragePoolGetUUIDString(pool, $0) }),
          let name = virStoragePoolGetName(pool) else {
        virResetLastError()
        return
    }
    EventHub<StoragePoolEventFamily>.from(opaque).dispatch(make(uuid, String(cString: name)))
}
