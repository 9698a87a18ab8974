/// Runs `body` every `interval` until released: kept with what it belongs to (a libvirt
/// connection's watchers), it ends with it.
final class PeriodicTask: Sendable {
    private let task: Task<Void, Never>

    init(every interval: Duration, _ body: @escaping @Sendable () async -> Void) {
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                await body()
            }
        }
    }

    deinit { task.cancel() }
}
