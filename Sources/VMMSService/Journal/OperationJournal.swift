import Foundation
import Synchronization

/// One step of a multi-step operation whose effect must be undone if the operation is cut
/// short by a crash (like udisks' state file).
enum JournalStep: Codable, Sendable, Equatable {
    /// A disk image about to be created (a new VHDX).
    case createDisk(path: String)
    /// A domain about to be defined with this UUID and name.
    case defineDomain(uuid: String, name: String)
    /// A storage pool (a SAN) about to be defined with this UUID and name.
    case definePool(uuid: String, name: String)
    /// A file or folder an Export, Import or Move is about to make (or, for a Move, the old
    /// file it is about to replace): removed at recovery unless a domain uses it (or, for a
    /// folder, a file inside it), so a crash leaves either the old files or the new ones.
    case removeUnlessUsed(path: String)
    /// A libvirt network (a switch) about to be defined with this UUID and name.
    case defineNetwork(uuid: String, name: String)
    /// A host bridge about to be made for an External switch.
    case createBridge(name: String)
    /// A bridge whose switch is being deleted: it must not outlive the operation.
    case deleteBridge(name: String)
    /// A Checkpoint or Apply about to change the VM's disks (finished or undone by state).
    case checkpoint(CheckpointIntent)
    /// A storage Move of a Saved VM: its definition is re-pointed at the copies once they are
    /// whole, then its managed-save image. At recovery the image is made to name what the
    /// definition names, before the unused files go.
    case savedStateFollowsDefinition(uuid: String)
}

/// The intents of operations in progress, one file per operation under
/// `<state-dir>/journal/`. Each step is written (durably) before it is carried out, and the
/// file is removed when the operation has finished, either way. A file found at start-up is
/// an operation that a crash or `kill -9` interrupted: its steps are undone, newest first.
final class OperationJournal: Sendable {
    struct Entry: Codable, Sendable {
        var id: String
        var operation: String
        var started: Date
        var caller: String
        var steps: [JournalStep]
    }

    let directory: String
    /// Operations of this process still running: their files are theirs, not recovery's.
    private let active = Mutex<Set<String>>([])

    init(stateDirectory: String) {
        directory = stateDirectory + "/journal"
    }

    /// Starts recording an operation.
    func begin(_ operation: String, caller: String) -> JournalRecord {
        let id = UUID().uuidString.lowercased()
        active.withLock { _ = $0.insert(id) }
        return JournalRecord(journal: self, entry: Entry(id: id, operation: operation, started: Date(), caller: caller, steps: []))
    }

    fileprivate func release(_ id: String) {
        active.withLock { _ = $0.remove(id) }
    }

    fileprivate func path(of id: String) -> String { directory + "/" + id + ".json" }

    fileprivate func write(_ entry: Entry) async throws {
        let data = try JSONEncoder().encode(entry)
        let path = path(of: entry.id)
        try await BlockingIO.run { try DurableFile.write(data, to: path) }
    }

    fileprivate func remove(_ id: String) async {
        let path = path(of: id)
        _ = try? await BlockingIO.run { DurableFile.remove(path) }
    }

    /// Operations that did not finish (a crash, or an undo that libvirt did not let happen),
    /// oldest first, and files that could not be read. Running operations are not among them.
    func interrupted() async -> (entries: [Entry], unreadable: [String]) {
        let directory = self.directory
        let running = active.withLock { $0 }
        return (try? await BlockingIO.run { () -> ([Entry], [String]) in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var entries: [Entry] = [], unreadable: [String] = []
            for name in names.sorted() {
                let path = directory + "/" + name
                if name.contains(".tmp-") { try? FileManager.default.removeItem(atPath: path); continue }
                guard name.hasSuffix(".json"), !running.contains(String(name.dropLast(5))) else { continue }
                if let data = FileManager.default.contents(atPath: path),
                   let entry = try? JSONDecoder().decode(Entry.self, from: data) {
                    entries.append(entry)
                } else {
                    unreadable.append(path)
                }
            }
            return (entries.sorted { $0.started < $1.started }, unreadable)
        }) ?? ([], [])
    }

    /// Forgets an interrupted operation once it has been undone.
    func discard(_ entry: Entry) async { await remove(entry.id) }
}

/// The journal file of one operation in progress.
final class JournalRecord: Sendable {
    private let journal: OperationJournal
    private let entry: Mutex<OperationJournal.Entry>

    fileprivate init(journal: OperationJournal, entry: OperationJournal.Entry) {
        self.journal = journal
        self.entry = Mutex(entry)
    }

    /// Records `step` durably; call before carrying it out.
    func intend(_ step: JournalStep) async throws {
        let snapshot = entry.withLock { entry in
            entry.steps.append(step)
            return entry
        }
        do {
            try await journal.write(snapshot)
        } catch {
            throw VMMSError.failed("cannot record the operation in \(journal.directory): \(error)")
        }
    }

    /// The operation is over (done, or undone by itself): nothing is left to recover.
    func finish() async {
        let (id, written) = entry.withLock { ($0.id, !$0.steps.isEmpty) }
        if written { await journal.remove(id) }
        journal.release(id)
    }

    /// The operation failed and could not undo what it did (libvirt did not answer): the
    /// record stays for recovery, which retries until libvirt lets it.
    func abandon() {
        journal.release(entry.withLock { $0.id })
    }
}

/// Test hook: `VMMSD_TEST_CRASH_AT=<point>` in vmmsd's environment kills the daemon with
/// SIGKILL when it reaches that point (`CreateVM.diskCreated`, …), so the tests can check
/// what a crash at each step leaves behind. Unset, it does nothing.
enum CrashPoint {
    private static let armed = ProcessInfo.processInfo.environment["VMMSD_TEST_CRASH_AT"]

    static func reached(_ point: String) {
        if armed == point { kill(getpid(), SIGKILL) }
    }
}
