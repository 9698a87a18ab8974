internal import CDBus
import Foundation
import Glibc
import Synchronization

/// A connection to a message bus, with its own I/O thread.
///
/// libdbus is driven from exactly one thread, the connection's loop: every libdbus call on this
/// connection runs there, queued by `perform`. Callers on any thread or task hand work to the
/// loop and never block; incoming method calls leave the loop at once for the handler's task.
/// We run our own `poll(2)` loop over libdbus's watches and timeouts (instead of
/// `dbus_connection_read_write_dispatch`) because a blocking read there would delay messages
/// queued by other threads until something arrives.
public final class DBusConnection: @unchecked Sendable {
    /// Which bus to connect to.
    public enum Bus: Sendable {
        case system, session
        /// A bus at an explicit address, such as `unix:path=/run/private-bus`.
        case address(String)
    }

    let raw: OpaquePointer
    /// The unique name the bus gave us, such as `:1.42`.
    public let uniqueName: String

    /// Jobs for the loop thread; once the loop has ended (`stopped`), jobs run on the caller's
    /// thread instead: they find the connection closed and fail their continuations, which
    /// would otherwise never resume.
    private let jobs = Mutex<(queue: [@Sendable () -> Void], stopped: Bool)>(([], false))
    /// The thread running the loop (set when it starts): what runs there may use the
    /// connection directly instead of queueing a job and waking the loop.
    private let loopThread = Mutex<pthread_t?>(nil)
    /// A self-pipe: writing to it wakes the loop out of `poll(2)` when work is queued.
    private let wakeReadFD: Int32
    private let wakeWriteFD: Int32

    // Loop-thread state: touched only by the loop thread (or by `init` before it starts).
    private var watches: [OpaquePointer] = []
    private var timeouts: [OpaquePointer: ContinuousClock.Instant] = [:]
    private var pendingReplies: [UInt32: PendingReply] = [:]
    /// Calls waiting for a free reply slot, oldest first, each with its own deadline.
    private var queuedCalls: [QueuedCall] = []
    /// Calls we stopped waiting for (timed out or cancelled) whose reply the bus still expects
    /// from the callee: they count against the bus's limit until that reply (or the bus's error
    /// for it) arrives.
    private var abandonedSerials: Set<UInt32> = []
    private var subscriptions: [Int: Subscription] = [:]
    private var nextSubscriptionID = 0
    private var methodCallHandler: (@Sendable (DBusMessage) -> Void)?
    private var isOpen = true
    private var isStopping = false

    private struct PendingReply {
        let continuation: CheckedContinuation<DBusMessage, any Error>
        let deadline: ContinuousClock.Instant
        let ticket: CallTicket
    }

    private struct QueuedCall {
        let message: DBusMessage
        let reply: PendingReply
    }

    /// Links a waiting call to its task's cancellation handler.
    private final class CallTicket: Sendable {
        let cancelled = Atomic<Bool>(false)
    }

    /// How many calls may wait for replies at once; more wait in a queue. The bus daemon
    /// refuses calls beyond its `max_replies_per_connection` (128 on the system bus) with
    /// LimitsExceeded, so the default stays below it, and equals `ObjectServer`'s default limit
    /// per sender, so that our own clients never meet that one either.
    public let maxPendingReplies: Int
    public static let defaultMaxPendingReplies = 64

    private struct Subscription {
        let rule: MatchRule
        let continuation: AsyncStream<DBusMessage>.Continuation
    }

    /// Connects, registers with the bus and starts the loop thread. The connection lives until
    /// `close()`. Blocks the calling thread while the bus daemon authenticates us and answers
    /// `Hello`; async code uses `connect(_:maxPendingReplies:timeout:)`.
    /// Wraps `dbus_bus_get_private` / `dbus_connection_open_private` + `dbus_bus_register`.
    public init(bus: Bus, maxPendingReplies: Int = DBusConnection.defaultMaxPendingReplies) throws(DBusError) {
        self.maxPendingReplies = max(1, maxPendingReplies)
        dbus_threads_init_default()
        var error = CDBus.DBusError()
        dbus_error_init(&error)
        defer { dbus_error_free(&error) }
        let connection: OpaquePointer?
        switch bus {
        case .system: connection = dbus_bus_get_private(DBUS_BUS_SYSTEM, &error)
        case .session: connection = dbus_bus_get_private(DBUS_BUS_SESSION, &error)
        case .address(let address):
            connection = dbus_connection_open_private(address, &error)
            if let connection, dbus_bus_register(connection, &error) == 0 {
                dbus_connection_close(connection)
                dbus_connection_unref(connection)
                throw Self.error(from: &error, function: "dbus_bus_register")
            }
        }
        guard let connection else { throw Self.error(from: &error, function: "dbus_bus_get_private") }
        raw = connection
        uniqueName = dbus_bus_get_unique_name(connection).map { String(cString: $0) } ?? ""
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            dbus_connection_close(connection)
            dbus_connection_unref(connection)
            throw DBusError.failed("pipe2: \(String(cString: strerror(errno)))")
        }
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        }
        wakeReadFD = pipeFDs[0]
        wakeWriteFD = pipeFDs[1]
        dbus_connection_set_exit_on_disconnect(connection, 0)

        let context = Unmanaged.passUnretained(self).toOpaque()
        dbus_connection_set_watch_functions(connection, Callbacks.addWatch, Callbacks.removeWatch, Callbacks.toggleWatch, context, nil)
        dbus_connection_set_timeout_functions(connection, Callbacks.addTimeout, Callbacks.removeTimeout, Callbacks.toggleTimeout, context, nil)
        dbus_connection_set_wakeup_main_function(connection, Callbacks.wakeUp, context, nil)
        dbus_connection_add_filter(connection, Callbacks.filter, context, nil)

        // The thread keeps the connection alive until `close()` ends the loop.
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "dbus-loop"
        thread.start()
    }

    static func error(from error: inout CDBus.DBusError, function: String) -> DBusError {
        if dbus_error_is_set(&error) != 0 {
            let name = error.name.map { String(cString: $0) } ?? DBusError.Name.failed
            let message = error.message.map { String(cString: $0) } ?? function
            return DBusError(name, message)
        }
        return DBusError(DBusError.Name.failed, "\(function) failed")
    }

    /// Connects like `init(bus:maxPendingReplies:)`, on a thread of its own, so that no thread of
    /// the cooperative pool waits for the bus daemon. Fails with `…Error.Timeout` after
    /// `timeout`; a connection that completes after that is closed at once.
    public static func connect(_ bus: Bus, maxPendingReplies: Int = DBusConnection.defaultMaxPendingReplies,
                               timeout: Duration = .seconds(25)) async throws -> DBusConnection {
        let outcome = OneShot<DBusConnection>()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.arm(continuation)
            let timer = Task.detached {
                do { try await Task.sleep(for: timeout) } catch { return }
                outcome.resume(.failure(DBusError(DBusError.Name.timeout, "the bus did not accept the connection within \(timeout)")))
            }
            Thread.detachNewThread {
                let result = Result { () throws(DBusError) -> DBusConnection in
                    try DBusConnection(bus: bus, maxPendingReplies: maxPendingReplies)
                }
                if !outcome.resume(result.mapError { $0 as any Error }), case .success(let late) = result { late.close() }
                timer.cancel()
            }
        }
    }

    // MARK: Public API

    /// Queues a message for sending. Wraps `dbus_connection_send`.
    public func send(_ message: DBusMessage) {
        if isLoopThread {
            // A handler the loop runs (a reply answered during dispatch): send at once, as
            // libdbus answers Peer.Ping, without a round through the wake pipe.
            guard isOpen else { return }
            dbus_connection_send(raw, message.raw, nil)
            return
        }
        perform { connection in
            guard connection.isOpen else { return }
            dbus_connection_send(connection.raw, message.raw, nil)
        }
    }

    /// Whether the caller runs on this connection's loop thread.
    var isLoopThread: Bool {
        guard let loop = loopThread.withLock({ $0 }) else { return false }
        return pthread_equal(loop, pthread_self()) != 0
    }

    /// Sends a method call and waits for its reply, which may be an error reply.
    /// Fails with `org.freedesktop.DBus.Error.NoReply` after `timeout` (time spent queued behind
    /// `maxPendingReplies` other calls included), with `…Disconnected` when the connection goes
    /// away first, and with `CancellationError` as soon as the calling task is cancelled.
    public func sendWithReply(_ message: DBusMessage, timeout: Duration = .seconds(25)) async throws -> DBusMessage {
        let ticket = CallTicket()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let call = QueuedCall(message: message,
                                      reply: PendingReply(continuation: continuation, deadline: .now + timeout, ticket: ticket))
                perform { connection in connection.start(call) }
            }
        } onCancel: {
            ticket.cancelled.store(true, ordering: .sequentiallyConsistent)
            perform { connection in connection.cancel(ticket) }
        }
    }

    /// Calls a method and returns the reply's body; an error reply is thrown as `DBusError`.
    public func call(destination: String, path: ObjectPath, interface: String, member: String,
                     _ body: [DBusValue] = [], allowInteractiveAuthorization: Bool = false,
                     timeout: Duration = .seconds(25)) async throws -> [DBusValue] {
        let message = try DBusMessage.methodCall(destination: destination, path: path, interface: interface, member: member, body: body)
        message.allowsInteractiveAuthorization = allowInteractiveAuthorization
        let reply = try await sendWithReply(message, timeout: timeout)
        if let error = reply.asError { throw error }
        return reply.body
    }

    /// Subscribes to signals matching `rule`: adds the match on the bus, then yields every
    /// matching signal until the stream is dropped, which removes the match again.
    public func signals(matching rule: MatchRule) async throws -> AsyncStream<DBusMessage> {
        let (stream, continuation) = AsyncStream.makeStream(of: DBusMessage.self, bufferingPolicy: .bufferingNewest(4096))
        let id: Int = await withCheckedContinuation { done in
            perform { connection in
                guard connection.isOpen else {
                    // A closed connection delivers nothing: the stream ends at once.
                    continuation.finish()
                    done.resume(returning: -1)
                    return
                }
                let id = connection.nextSubscriptionID
                connection.nextSubscriptionID += 1
                connection.subscriptions[id] = Subscription(rule: rule, continuation: continuation)
                done.resume(returning: id)
            }
        }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            guard id >= 0 else { return }
            self.perform { connection in if connection.isOpen { connection.subscriptions[id] = nil } }
            Task { _ = try? await self.busCall("RemoveMatch", [.string(rule.ruleString)]) }
        }
        do {
            _ = try await busCall("AddMatch", [.string(rule.ruleString)])
        } catch {
            continuation.finish()
            throw error
        }
        return stream
    }

    /// Installs the handler for every incoming method call. It runs on the loop thread and must
    /// only hand the message on (to a task), never do the work itself.
    public func setMethodCallHandler(_ handler: @escaping @Sendable (DBusMessage) -> Void) {
        perform { connection in connection.methodCallHandler = handler }
    }

    /// Asks the bus for a well-known name, without queueing behind another owner.
    public func requestName(_ name: String) async throws {
        let reply = try await busCall("RequestName", [.string(name), .uint32(UInt32(DBUS_NAME_FLAG_DO_NOT_QUEUE))])
        guard let code = reply.first?.uint32, code == UInt32(DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER)
            || code == UInt32(DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER) else {
            throw DBusError("org.freedesktop.DBus.Error.AddressInUse", "the name \(name) is already owned by another connection")
        }
    }

    /// The Unix user id behind a bus name, as the bus daemon saw it when the peer connected.
    public func unixUser(of busName: String) async throws -> UInt32 {
        let reply = try await busCall("GetConnectionUnixUser", [.string(busName)])
        guard let uid = reply.first?.uint32 else { throw DBusError.failed("GetConnectionUnixUser returned no uid") }
        return uid
    }

    /// The process id behind a bus name.
    public func unixProcessID(of busName: String) async throws -> UInt32 {
        let reply = try await busCall("GetConnectionUnixProcessID", [.string(busName)])
        guard let pid = reply.first?.uint32 else { throw DBusError.failed("GetConnectionUnixProcessID returned no pid") }
        return pid
    }

    func busCall(_ member: String, _ body: [DBusValue]) async throws -> [DBusValue] {
        try await call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                       interface: "org.freedesktop.DBus", member: member, body)
    }

    /// True until the bus drops us or `close()` runs.
    public var isConnected: Bool {
        get async { await withCheckedContinuation { done in perform { done.resume(returning: $0.isOpen) } } }
    }

    /// Flushes what is queued, closes the connection and ends the loop thread.
    /// Wraps `dbus_connection_flush` and `dbus_connection_close`.
    public func close() {
        perform { connection in
            guard connection.isOpen else { connection.isStopping = true; return }
            dbus_connection_flush(connection.raw)
            dbus_connection_close(connection.raw)
            connection.markClosed()
            connection.isStopping = true
        }
    }

    // MARK: The loop

    /// Runs `job` on the loop thread.
    func perform(_ job: @escaping @Sendable (DBusConnection) -> Void) {
        let queued = jobs.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.queue.append { [self] in job(self) }
            return true
        }
        if queued { wake() } else { job(self) }
    }

    func wake() {
        var one: UInt8 = 1
        _ = Glibc.write(wakeWriteFD, &one, 1)
    }

    private func runLoop() {
        loopThread.withLock { $0 = pthread_self() }
        while true {
            runQueuedJobs()
            if isStopping { break }
            while dbus_connection_dispatch(raw) == DBUS_DISPATCH_DATA_REMAINS {}
            pollOnce()
            expireReplies()
        }
        let left = jobs.withLock { state -> [@Sendable () -> Void] in
            state.stopped = true
            defer { state.queue.removeAll() }
            return state.queue
        }
        for job in left { job() }
        // The handler holds whoever serves calls on this connection (an ObjectServer, which
        // holds the connection): dropping it ends that cycle once the loop is over.
        methodCallHandler = nil
        dbus_connection_unref(raw)
        // The wake pipe stays open until deinit: a late wake() must never write into a
        // descriptor number that some other connection's socket has taken over meanwhile.
    }

    /// Runs the jobs queued so far. In a function of its own so that the jobs, and what they
    /// hold (a sent reply with its file descriptors), are released before the loop sleeps.
    private func runQueuedJobs() {
        let queued = jobs.withLock { state -> [@Sendable () -> Void] in
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        for job in queued { job() }
    }

    deinit {
        Glibc.close(wakeReadFD)
        Glibc.close(wakeWriteFD)
    }

    private func pollOnce() {
        var fds = [pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0)]
        var polled: [OpaquePointer] = []
        for watch in watches where dbus_watch_get_enabled(watch) != 0 {
            let flags = dbus_watch_get_flags(watch)
            var events: Int16 = 0
            if flags & DBUS_WATCH_READABLE.rawValue != 0 { events |= Int16(POLLIN) }
            if flags & DBUS_WATCH_WRITABLE.rawValue != 0 { events |= Int16(POLLOUT) }
            fds.append(pollfd(fd: dbus_watch_get_unix_fd(watch), events: events, revents: 0))
            polled.append(watch)
        }
        let result = poll(&fds, nfds_t(fds.count), pollTimeoutMilliseconds())
        guard result > 0 else { handleDueTimeouts(); return }
        if fds[0].revents != 0 {
            var drain = [UInt8](repeating: 0, count: 256)
            while Glibc.read(wakeReadFD, &drain, drain.count) > 0 {}
        }
        for (index, watch) in polled.enumerated() {
            let revents = fds[index + 1].revents
            // Handling one watch may remove others; skip those libdbus no longer owns.
            guard revents != 0, watches.contains(watch) else { continue }
            var flags: UInt32 = 0
            if revents & Int16(POLLIN) != 0 { flags |= DBUS_WATCH_READABLE.rawValue }
            if revents & Int16(POLLOUT) != 0 { flags |= DBUS_WATCH_WRITABLE.rawValue }
            if revents & Int16(POLLERR) != 0 { flags |= DBUS_WATCH_ERROR.rawValue }
            if revents & Int16(POLLHUP) != 0 { flags |= DBUS_WATCH_HANGUP.rawValue }
            dbus_watch_handle(watch, flags)
        }
        handleDueTimeouts()
    }

    private func pollTimeoutMilliseconds() -> Int32 {
        let deadlines = pendingReplies.values.map(\.deadline) + queuedCalls.map(\.reply.deadline) + timeouts.values
        guard let nearest = deadlines.min() else { return -1 }
        let remaining = ContinuousClock.now.duration(to: nearest)
        if remaining <= .zero { return 0 }
        let (seconds, attoseconds) = remaining.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    private func handleDueTimeouts() {
        let now = ContinuousClock.now
        for (timeout, deadline) in timeouts where deadline <= now {
            guard timeouts[timeout] != nil else { continue }
            timeouts[timeout] = now + .milliseconds(Int(dbus_timeout_get_interval(timeout)))
            dbus_timeout_handle(timeout)
        }
    }

    // MARK: Calls and their reply slots (loop thread)

    private func start(_ call: QueuedCall) {
        guard isOpen else {
            call.reply.continuation.resume(throwing: DBusError(DBusError.Name.disconnected, "the connection is closed"))
            return
        }
        if call.reply.ticket.cancelled.load(ordering: .sequentiallyConsistent) {
            call.reply.continuation.resume(throwing: CancellationError())
        } else if queuedCalls.isEmpty && hasFreeReplySlot {
            send(call)
        } else {
            queuedCalls.append(call)
        }
    }

    private var hasFreeReplySlot: Bool { pendingReplies.count + abandonedSerials.count < maxPendingReplies }

    private func send(_ call: QueuedCall) {
        var serial: UInt32 = 0
        guard dbus_connection_send(raw, call.message.raw, &serial) != 0 else {
            call.reply.continuation.resume(throwing: DBusError(DBusError.Name.noMemory, "dbus_connection_send failed"))
            return
        }
        pendingReplies[serial] = call.reply
    }

    /// Sends queued calls while reply slots are free.
    private func sendQueued() {
        while hasFreeReplySlot, !queuedCalls.isEmpty {
            let call = queuedCalls.removeFirst()
            if call.reply.ticket.cancelled.load(ordering: .sequentiallyConsistent) {
                call.reply.continuation.resume(throwing: CancellationError())
            } else {
                send(call)
            }
        }
    }

    private func cancel(_ ticket: CallTicket) {
        if let (serial, pending) = pendingReplies.first(where: { $0.value.ticket === ticket }) {
            pendingReplies[serial] = nil
            abandonedSerials.insert(serial)
            pending.continuation.resume(throwing: CancellationError())
        } else if let index = queuedCalls.firstIndex(where: { $0.reply.ticket === ticket }) {
            queuedCalls.remove(at: index).reply.continuation.resume(throwing: CancellationError())
        }
    }

    private func expireReplies() {
        let now = ContinuousClock.now
        for (serial, pending) in pendingReplies where pending.deadline <= now {
            pendingReplies[serial] = nil
            abandonedSerials.insert(serial)
            pending.continuation.resume(throwing: DBusError(DBusError.Name.noReply, "no reply within the timeout"))
        }
        if queuedCalls.contains(where: { $0.reply.deadline <= now }) {
            queuedCalls.removeAll { call in
                guard call.reply.deadline <= now else { return false }
                call.reply.continuation.resume(throwing: DBusError(
                    DBusError.Name.noReply,
                    "no reply within the timeout: the call waited behind \(maxPendingReplies) others that are still unanswered"))
                return true
            }
        }
        sendQueued()
    }

    private func markClosed() {
        isOpen = false
        for pending in pendingReplies.values {
            pending.continuation.resume(throwing: DBusError(DBusError.Name.disconnected, "the connection was closed"))
        }
        pendingReplies.removeAll()
        for call in queuedCalls {
            call.reply.continuation.resume(throwing: DBusError(DBusError.Name.disconnected, "the connection was closed"))
        }
        queuedCalls.removeAll()
        abandonedSerials.removeAll()
        for subscription in subscriptions.values { subscription.continuation.finish() }
        subscriptions.removeAll()
    }

    // MARK: libdbus callbacks (all on the loop thread)

    fileprivate func filter(_ message: DBusMessage) -> DBusHandlerResult {
        switch message.kind {
        case .methodReturn, .error:
            if let pending = pendingReplies.removeValue(forKey: message.replySerial) {
                pending.continuation.resume(returning: message)
            } else if abandonedSerials.remove(message.replySerial) == nil {
                break
            }
            sendQueued()
            return DBUS_HANDLER_RESULT_HANDLED
        case .signal:
            if message.interface == "org.freedesktop.DBus.Local", message.member == "Disconnected" {
                markClosed()
                return DBUS_HANDLER_RESULT_HANDLED
            }
            for subscription in subscriptions.values where subscription.rule.matches(message) {
                subscription.continuation.yield(message)
            }
        case .methodCall:
            guard let methodCallHandler else { break }
            methodCallHandler(message)
            return DBUS_HANDLER_RESULT_HANDLED
        case .invalid:
            break
        }
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED
    }

    fileprivate func addWatch(_ watch: OpaquePointer) { watches.append(watch) }
    fileprivate func removeWatch(_ watch: OpaquePointer) { watches.removeAll { $0 == watch } }
    fileprivate func updateTimeout(_ timeout: OpaquePointer) {
        if dbus_timeout_get_enabled(timeout) != 0 {
            timeouts[timeout] = .now + .milliseconds(Int(dbus_timeout_get_interval(timeout)))
        } else {
            timeouts[timeout] = nil
        }
    }
    fileprivate func removeTimeout(_ timeout: OpaquePointer) { timeouts[timeout] = nil }
}

/// The C callbacks libdbus calls; each finds its connection through the context pointer.
private enum Callbacks {
    static func connection(_ data: UnsafeMutableRawPointer?) -> DBusConnection? {
        data.map { Unmanaged<DBusConnection>.fromOpaque($0).takeUnretainedValue() }
    }

    static let filter: DBusHandleMessageFunction = { _, message, data in
        guard let message, let connection = connection(data) else { return DBUS_HANDLER_RESULT_NOT_YET_HANDLED }
        return connection.filter(DBusMessage(retaining: message))
    }
    static let addWatch: DBusAddWatchFunction = { watch, data in
        if let watch { connection(data)?.addWatch(watch) }
        return 1
    }
    static let removeWatch: DBusRemoveWatchFunction = { watch, data in
        if let watch { connection(data)?.removeWatch(watch) }
    }
    // Enabled state is read afresh before every poll, so a toggle needs no bookkeeping.
    static let toggleWatch: DBusWatchToggledFunction = { _, _ in }
    static let addTimeout: DBusAddTimeoutFunction = { timeout, data in
        if let timeout { connection(data)?.updateTimeout(timeout) }
        return 1
    }
    static let removeTimeout: DBusRemoveTimeoutFunction = { timeout, data in
        if let timeout { connection(data)?.removeTimeout(timeout) }
    }
    static let toggleTimeout: DBusTimeoutToggledFunction = { timeout, data in
        if let timeout { connection(data)?.updateTimeout(timeout) }
    }
    static let wakeUp: DBusWakeupMainFunction = { data in connection(data)?.wake() }
}

/// A continuation resumed by whichever of several racers finishes first.
final class OneShot<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, any Error>?>(nil)

    func arm(_ continuation: CheckedContinuation<Value, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// Resumes with `result` unless someone already did; returns whether this call did.
    @discardableResult
    func resume(_ result: Result<Value, any Error>) -> Bool {
        guard let continuation = continuation.withLock({ stored -> CheckedContinuation<Value, any Error>? in
            defer { stored = nil }
            return stored
        }) else { return false }
        continuation.resume(with: result)
        return true
    }
}
