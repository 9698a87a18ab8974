internal import CPolkit
import Dispatch
import Synchronization

/// An owned `GCancellable*` plus why it was cancelled. `g_cancellable_cancel` is thread-safe,
/// so this may be cancelled from a timer or a task-cancellation handler on any thread.
final class OwnedCancellable: @unchecked Sendable {
    /// Why a check was cancelled; the first reason wins.
    enum Reason: Sendable, Equatable {
        case timeout(Duration)
        case taskCancelled
    }

    let pointer: UnsafeMutablePointer<GCancellable>
    private let storedReason = Mutex<Reason?>(nil)

    /// Wraps `g_cancellable_new`.
    init() throws(PolkitError) {
        guard let pointer = g_cancellable_new() else {
            throw PolkitError(consuming: nil, function: "g_cancellable_new")
        }
        self.pointer = pointer
    }

    deinit {
        g_object_unref(UnsafeMutableRawPointer(pointer))
    }

    /// Wraps `g_cancellable_cancel`.
    func cancel(_ reason: Reason) {
        storedReason.withLock { stored in
            if stored == nil { stored = reason }
        }
        g_cancellable_cancel(pointer)
    }

    /// The reason passed to the first `cancel(_:)`, or nil if never cancelled.
    var reason: Reason? {
        storedReason.withLock { $0 }
    }

    /// Wraps `g_cancellable_is_cancelled`.
    var isCancelled: Bool {
        g_cancellable_is_cancelled(pointer) != 0
    }
}

/// Cancels an `OwnedCancellable` with `.timeout` once `timeout` has elapsed, unless
/// `invalidate()` is called first. Runs on a private Dispatch queue, never on the caller.
final class CancellationTimer: @unchecked Sendable {
    private static let queue = DispatchQueue(label: "vmms.polkit.timeouts")
    private let source: DispatchSourceTimer

    init(cancelling cancellable: OwnedCancellable, after timeout: Duration) {
        source = DispatchSource.makeTimerSource(queue: Self.queue)
        source.schedule(deadline: .now() + Self.interval(timeout))
        source.setEventHandler {
            cancellable.cancel(.timeout(timeout))
        }
        source.resume()
    }

    deinit {
        source.cancel()
    }

    /// Stops the timer; a handler that already started still completes harmlessly.
    func invalidate() {
        source.cancel()
    }

    /// `timeout` in nanoseconds, clamped to [0, ~100 years] so it cannot overflow.
    static func interval(_ timeout: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = timeout.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return .nanoseconds(0) }
        let maxSeconds: Int64 = 100 * 365 * 24 * 3600
        if seconds >= maxSeconds { return .seconds(Int(maxSeconds)) }
        return .nanoseconds(Int(seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }
}
