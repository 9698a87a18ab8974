internal import CLibvirt

/// Something that happened to a domain, as reported by libvirt's domain events.
///
/// Every case carries the domain's lowercase UUID. Integer payloads are libvirt's raw enum
/// values (see the case documentation) so that values added by newer libvirt versions still
/// arrive instead of being dropped.
public enum DomainEvent: Sendable, Equatable {
    /// The domain was defined, started, paused, stopped… `event` is a `LifecycleEvent` raw
    /// value (`virDomainEventType`), `detail` the matching `virDomainEvent*DetailType`
    /// (e.g. `VIR_DOMAIN_EVENT_STOPPED_SAVED`). (`VIR_DOMAIN_EVENT_ID_LIFECYCLE`)
    case lifecycle(uuid: String, event: Int32, detail: Int32)
    /// The guest rebooted. (`VIR_DOMAIN_EVENT_ID_REBOOT`)
    case reboot(uuid: String)
    /// The guest changed its real-time clock; offset from UTC in seconds.
    /// (`VIR_DOMAIN_EVENT_ID_RTC_CHANGE`)
    case rtcChange(uuid: String, utcOffsetSeconds: Int64)
    /// The watchdog fired; `action` is a `virDomainEventWatchdogAction`.
    /// (`VIR_DOMAIN_EVENT_ID_WATCHDOG`)
    case watchdog(uuid: String, action: Int32)
    /// A disk I/O error (e.g. host disk full); `action` is a `virDomainEventIOErrorAction`
    /// (the domain is often paused), `reason` e.g. "enospc". (`VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON`)
    case ioError(uuid: String, path: String, alias: String, action: Int32, reason: String)
    /// libvirt lost control of the hypervisor process (monitor error).
    /// (`VIR_DOMAIN_EVENT_ID_CONTROL_ERROR`)
    case controlError(uuid: String)
    /// The memory balloon changed size; new size in KiB. (`VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE`)
    case balloonChange(uuid: String, actualKiB: UInt64)
    /// The guest woke from power-management suspend. (`VIR_DOMAIN_EVENT_ID_PMWAKEUP`)
    case pmWakeup(uuid: String)
    /// The guest suspended to RAM. (`VIR_DOMAIN_EVENT_ID_PMSUSPEND`)
    case pmSuspend(uuid: String)
    /// The guest suspended to disk. (`VIR_DOMAIN_EVENT_ID_PMSUSPEND_DISK`)
    case pmSuspendDisk(uuid: String)
    /// A device was hot-plugged; `alias` is its device alias. (`VIR_DOMAIN_EVENT_ID_DEVICE_ADDED`)
    case deviceAdded(uuid: String, alias: String)
    /// A device was unplugged; `alias` is its device alias. (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED`)
    case deviceRemoved(uuid: String, alias: String)
    /// The guest refused to release a device. (`VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED`)
    case deviceRemovalFailed(uuid: String, alias: String)
    /// Description, title or an application metadata element changed.
    /// (`VIR_DOMAIN_EVENT_ID_METADATA_CHANGE`)
    case metadataChange(uuid: String)
    /// A background job (migration, backup…) finished; `stats` are its final figures (type
    /// `.completed`; for a backup `success` and `errorMessage` tell how it ended).
    /// (`VIR_DOMAIN_EVENT_ID_JOB_COMPLETED`)
    case jobCompleted(uuid: String, stats: DomainJobStats)
    /// The guest agent connected or disconnected; `state` is a
    /// `virConnectDomainEventAgentLifecycleState` (1 connected, 2 disconnected), `reason` a
    /// `virConnectDomainEventAgentLifecycleReason`. (`VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE`)
    case agentLifecycle(uuid: String, state: Int32, reason: Int32)
    /// A block job (copy, commit, pull, backup) on `disk` (its target, e.g. "vda") completed,
    /// failed, was cancelled or became ready to pivot; `type` is a `BlockJobType` raw value
    /// (`virDomainBlockJobType`), `status` a `BlockJobStatus` (`virConnectDomainEventBlockJobStatus`).
    /// (`VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2`)
    case blockJob(uuid: String, disk: String, type: Int32, status: Int32)

    /// The UUID of the domain the event is about.
    public var uuid: String {
        switch self {
        case .lifecycle(let uuid, _, _), .reboot(let uuid), .rtcChange(let uuid, _),
             .watchdog(let uuid, _), .ioError(let uuid, _, _, _, _), .controlError(let uuid),
             .balloonChange(let uuid, _), .pmWakeup(let uuid), .pmSuspend(let uuid),
             .pmSuspendDisk(let uuid), .deviceAdded(let uuid, _), .deviceRemoved(let uuid, _),
             .deviceRemovalFailed(let uuid, _), .metadataChange(let uuid), .jobCompleted(let uuid, _),
             .agentLifecycle(let uuid, _, _), .blockJob(let uuid, _, _, _):
            return uuid
        }
    }

    /// For `.lifecycle`, the typed event kind (nil for other cases or unknown values).
    public var lifecycleEvent: LifecycleEvent? {
        if case .lifecycle(_, let event, _) = self { return LifecycleEvent(rawValue: event) }
        return nil
    }

    /// For `.blockJob`, the typed status (nil for other cases or unknown values).
    public var blockJobStatus: BlockJobStatus? {
        if case .blockJob(_, _, _, let status) = self { return BlockJobStatus(rawValue: status) }
        return nil
    }
}

extension LibvirtConnection {
    /// Registers `handler` for every `DomainEvent` kind on every domain of this connection.
    /// `handler` runs on the event-loop thread, one event at a time, in libvirt's order; keep
    /// it short (hand the event to an actor or a stream). Any number of handlers may be
    /// registered; they share one set of libvirt callbacks. Needs `LibvirtEventLoop.start()`
    /// before this connection was opened. Wraps `virConnectDomainEventRegisterAny`.
    public func registerDomainEvents(_ handler: @escaping @Sendable (DomainEvent) -> Void) throws -> EventRegistration {
        try domainEvents.add(handler, connection: self)
    }
}

// MARK: - C callback plumbing

/// Domain events: one C callback per event ID, all registered at once.
enum DomainEventFamily: EventFamily {
    typealias Event = DomainEvent

    static func register(connection: OpaquePointer, hub: EventHub<DomainEventFamily>) throws(LibvirtError) -> [Int32] {
        try hub.registerEach(domainEventCallbacks(), function: "virConnectDomainEventRegisterAny",
                             connection: connection) { connection, eventID, callback, opaque, free in
            virConnectDomainEventRegisterAny(connection, nil, eventID, callback, opaque, free)
        }
    }

    static func deregister(connection: OpaquePointer, callbackID: Int32) -> Int32 {
        virConnectDomainEventDeregisterAny(connection, callbackID)
    }
}

/// Builds the event from the domain's UUID and passes it to the hub's handlers.
private func deliver(_ domain: OpaquePointer?, _ opaque: UnsafeMutableRawPointer?,
                     _ make: (String) -> DomainEvent) {
    guard let domain, let opaque, let uuid = domainUUIDString(domain) else { return }
    EventHub<DomainEventFamily>.from(opaque).dispatch(make(uuid))
}

/// libvirt takes every callback as `virConnectDomainEventGenericCallback` and calls it with
/// the signature of its event ID (the C API's `VIR_DOMAIN_EVENT_CALLBACK` cast).
private func generic<F>(_ callback: F) -> virConnectDomainEventGenericCallback {
    unsafeBitCast(callback, to: virConnectDomainEventGenericCallback.self)
}

/// Each event ID with a C callback of exactly the signature libvirt calls it with.
private func domainEventCallbacks() -> [(Int32, virConnectDomainEventGenericCallback)] {
    let lifecycle: virConnectDomainEventCallback = { _, dom, event, detail, opaque in
        deliver(dom, opaque) { .lifecycle(uuid: $0, event: event, detail: detail) }
        return 0
    }
    let reboot: virConnectDomainEventGenericCallback = { _, dom, opaque in
        deliver(dom, opaque) { .reboot(uuid: $0) }
    }
    let rtcChange: virConnectDomainEventRTCChangeCallback = { _, dom, offset, opaque in
        deliver(dom, opaque) { .rtcChange(uuid: $0, utcOffsetSeconds: offset) }
    }
    let watchdog: virConnectDomainEventWatchdogCallback = { _, dom, action, opaque in
        deliver(dom, opaque) { .watchdog(uuid: $0, action: action) }
    }
    let ioError: virConnectDomainEventIOErrorReasonCallback = { _, dom, path, alias, action, reason, opaque in
        deliver(dom, opaque) {
            .ioError(uuid: $0, path: stringOrEmpty(path), alias: stringOrEmpty(alias), action: action,
                     reason: stringOrEmpty(reason))
        }
    }
    let controlError: virConnectDomainEventGenericCallback = { _, dom, opaque in
        deliver(dom, opaque) { .controlError(uuid: $0) }
    }
    let balloon: virConnectDomainEventBalloonChangeCallback = { _, dom, actual, opaque in
        deliver(dom, opaque) { .balloonChange(uuid: $0, actualKiB: actual) }
    }
    let pmWakeup: virConnectDomainEventPMWakeupCallback = { _, dom, _, opaque in
        deliver(dom, opaque) { .pmWakeup(uuid: $0) }
    }
    let pmSuspend: virConnectDomainEventPMSuspendCallback = { _, dom, _, opaque in
        deliver(dom, opaque) { .pmSuspend(uuid: $0) }
    }
    let pmSuspendDisk: virConnectDomainEventPMSuspendDiskCallback = { _, dom, _, opaque in
        deliver(dom, opaque) { .pmSuspendDisk(uuid: $0) }
    }
    let deviceAdded: virConnectDomainEventDeviceAddedCallback = { _, dom, alias, opaque in
        deliver(dom, opaque) { .deviceAdded(uuid: $0, alias: stringOrEmpty(alias)) }
    }
    let deviceRemoved: virConnectDomainEventDeviceRemovedCallback = { _, dom, alias, opaque in
        deliver(dom, opaque) { .deviceRemoved(uuid: $0, alias: stringOrEmpty(alias)) }
    }
    let removalFailed: virConnectDomainEventDeviceRemovalFailedCallback = { _, dom, alias, opaque in
        deliver(dom, opaque) { .deviceRemovalFailed(uuid: $0, alias: stringOrEmpty(alias)) }
    }
    let metadata: virConnectDomainEventMetadataChangeCallback = { _, dom, _, _, opaque in
        deliver(dom, opaque) { .metadataChange(uuid: $0) }
    }
    let jobCompleted: virConnectDomainEventJobCompletedCallback = { _, dom, params, count, opaque in
        let stats = DomainJobStats(type: cInt(VIR_DOMAIN_JOB_COMPLETED),
                                   parameters: readTypedParameters(params, count: count))
        deliver(dom, opaque) { .jobCompleted(uuid: $0, stats: stats) }
    }
    let agent: virConnectDomainEventAgentLifecycleCallback = { _, dom, state, reason, opaque in
        deliver(dom, opaque) { .agentLifecycle(uuid: $0, state: state, reason: reason) }
    }
    let blockJob: virConnectDomainEventBlockJobCallback = { _, dom, disk, type, status, opaque in
        deliver(dom, opaque) { .blockJob(uuid: $0, disk: stringOrEmpty(disk), type: type, status: status) }
    }
    let callbacks: [(virDomainEventID, virConnectDomainEventGenericCallback)] = [
        (VIR_DOMAIN_EVENT_ID_LIFECYCLE, generic(lifecycle)),
        (VIR_DOMAIN_EVENT_ID_REBOOT, reboot),
        (VIR_DOMAIN_EVENT_ID_RTC_CHANGE, generic(rtcChange)),
        (VIR_DOMAIN_EVENT_ID_WATCHDOG, generic(watchdog)),
        (VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, generic(ioError)),
        (VIR_DOMAIN_EVENT_ID_CONTROL_ERROR, controlError),
        (VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE, generic(balloon)),
        (VIR_DOMAIN_EVENT_ID_PMWAKEUP, generic(pmWakeup)),
        (VIR_DOMAIN_EVENT_ID_PMSUSPEND, generic(pmSuspend)),
        (VIR_DOMAIN_EVENT_ID_PMSUSPEND_DISK, generic(pmSuspendDisk)),
        (VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, generic(deviceAdded)),
        (VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, generic(deviceRemoved)),
        (VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED, generic(removalFailed)),
        (VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, generic(metadata)),
        (VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, generic(jobCompleted)),
        (VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, generic(agent)),
        (VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, generic(blockJob)),
    ]
    return callbacks.map { (cInt($0.0), $0.1) }
}
