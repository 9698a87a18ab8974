import Foundation
import Spawn
import Synchronization

extension ChildProcess {
    /// Waits for the exit on a dedicated thread.
    func exited() async -> Int32 {
        await withCheckedContinuation { done in
            let thread = Thread { [self] in done.resume(returning: self.wait()) }
            thread.start()
        }
    }
}

enum Scratch {
    private static let counter = Atomic<Int>(0)
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "vmms-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func file(_ stem: String) -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return "\(directory)/\(stem)-\(n)"
    }
}

/// Runs a program to completion on its own thread. `started` is taken just before the spawn.
func runCommand(_ executable: String, _ arguments: [String], stdinPath: String? = nil) async throws -> CommandOutput {
    try await withCheckedThrowingContinuation { done in
        let thread = Thread {
            done.resume(with: Result {
                do {
                    return try runToCompletion(executable, arguments, stdinPath: stdinPath)
                } catch {
                    throw BenchError("cannot start \(executable): \(error)")
                }
            })
        }
        thread.start()
    }
}

/// Runs a program and fails unless it exits with 0.
@discardableResult
func runChecked(_ executable: String, _ arguments: [String], stdinPath: String? = nil) async throws -> CommandOutput {
    let result = try await runCommand(executable, arguments, stdinPath: stdinPath)
    guard result.status == 0 else {
        throw BenchError("\(executable) \(arguments.joined(separator: " ")) exited with \(result.status): \(result.stderr.prefix(2000))")
    }
    return result
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func log(_ text: String) {
    FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
}
