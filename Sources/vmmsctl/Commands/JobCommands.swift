import ArgumentParser
import DBus
import Foundation

/// What every job-starting verb takes: wait (with a progress bar on a terminal) or not.
struct JobOptions: ParsableArguments {
    @Flag(help: "Print the job's object path and return at once (PowerShell's -AsJob); follow it with `vmmsctl job list`.")
    var noWait = false
}

/// Follows a job to its end from its signals: a progress bar on a terminal (stderr), nothing
/// otherwise; the job's failure becomes vmmsctl's. Subscribes before reading the job, so an
/// end that comes in between is not missed.
enum JobFollower {
    static func follow(_ job: ObjectPath, _ what: String, _ client: VMMSClient) async throws(Failure) {
        let stream: AsyncStream<DBusMessage>
        do {
            stream = try await client.connection.signals(matching: MatchRule(sender: API.service, path: job))
        } catch let error as DBusError {
            throw Failure(error, action: .read, remote: client.remote)
        } catch {
            throw Failure(.failed, "\(error)")
        }
        var properties = try await client.properties(job, API.jobInterface)
        let bar = ProgressBar(what: what, enabled: Terminal.isTerminal(2))
        var ended: (state: String, errorName: String, errorMessage: String)?
        if let state = properties["State"]?.string, state != "Running" {
            ended = (state, properties["ErrorName"]?.string ?? "", properties["ErrorMessage"]?.string ?? "")
        }
        bar.show(properties["PercentComplete"]?.uint32 ?? 0)
        if ended == nil {
            for await message in stream {
                let body = message.body
                if message.member == "Completed", body.count == 3 {
                    ended = (body[0].string ?? "", body[1].string ?? "", body[2].string ?? "")
                    break
                }
                if message.member == "PropertiesChanged", body.count >= 2, body[0].string == API.jobInterface,
                   let changed = body[1].stringKeyedDictionary {
                    properties.merge(changed) { $1 }
                    if let percent = changed["PercentComplete"]?.uint32 { bar.show(percent) }
                }
            }
        }
        bar.finish()
        guard let ended else { throw Failure(.unavailable, "the service went away before the job ended", errorName: nil) }
        switch ended.state {
        case "Completed": return
        case "Cancelled": throw Failure(.failed, "\(what) was cancelled", errorName: ended.errorName.isEmpty ? nil : ended.errorName)
        default:
            let error = DBusError(ended.errorName.isEmpty ? API.errorPrefix + "Failed" : ended.errorName, ended.errorMessage)
            throw Failure(error, action: .read, remote: client.remote)
        }
    }

    /// Starts a job with `call`, then waits for it unless told not to.
    static func run(_ options: JobOptions, _ what: String, _ client: VMMSClient,
                    _ call: () async throws(Failure) -> [DBusValue]) async throws(Failure) {
        let reply = try await call()
        guard let job = reply.first?.objectPath else { throw Failure(.failed, "the service returned no job") }
        if options.noWait {
            Terminal.out(job.rawValue + "\n")
            return
        }
        try await follow(job, what, client)
    }
}

/// `[#########           ]  45% Exporting web01`, redrawn in place on stderr.
final class ProgressBar: @unchecked Sendable {
    let what: String
    let enabled: Bool
    private var last: UInt32?

    init(what: String, enabled: Bool) {
        self.what = what
        self.enabled = enabled
    }

    static func render(_ percent: UInt32, what: String, width: Int = 30) -> String {
        let p = Int(min(percent, 100))
        let filled = p * width / 100
        return "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
            + String(repeating: " ", count: 3 - String(p).count) + "\(p)% " + what
    }

    func show(_ percent: UInt32) {
        guard enabled, percent != last else { return }
        last = percent
        Terminal.err("\r" + Self.render(percent, what: what))
    }

    func finish() {
        if enabled, last != nil { Terminal.err("\n") }
    }
}

struct Export: ServiceCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a VM to DIRECTORY/<VM name>/ in Hyper-V's layout (Export-VM); also while it runs.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var jobOptions: JobOptions
    @OptionGroup var target: OneVM
    @Argument(help: ArgumentHelp("Where the export folder is made.", valueName: "directory")) var directory: String

    func run(_ client: VMMSClient) async throws {
        let vm = try await client.lookupVM(target.vm)
        let path = global.servicePath(directory)
        try await JobFollower.run(jobOptions, "Exporting \(target.vm)", client) { () throws(Failure) in
            try await client.vmCall(vm, "Export", [.string(path), .vardict([:])], action: .vmExport)
        }
    }
}

struct Import: ServiceCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a VM from a folder Export wrote (Import-VM); copies it into the host's paths unless --in-place.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var jobOptions: JobOptions
    @Argument(help: ArgumentHelp("The export folder (DIRECTORY/<VM name>).", valueName: "folder")) var folder: String
    @Flag(help: "Register the files where they are (Import-VM -Register) instead of copying them (-Copy).") var inPlace = false
    @Flag(help: "A new UUID, MAC addresses and file names, so one export can be imported twice (-GenerateNewId).")
    var newId = false
    @Option(help: "Name the imported VM.") var name: String?

    func run(_ client: VMMSClient) async throws {
        var options: [String: DBusValue] = ["Copy": .boolean(!inPlace), "GenerateNewId": .boolean(newId)]
        if let name { options["Name"] = .string(name) }
        let path = global.servicePath(folder)
        try await JobFollower.run(jobOptions, "Importing \(folder)", client) { () throws(Failure) in
            try await client.call(API.hostPath, API.hostInterface, "ImportVM", [.string(path), .vardict(options)], action: .vmCreate)
        }
    }
}

struct Move: ServiceCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a VM's files to a directory on this host, also while it runs (Move-VMStorage), or the VM to another host's libvirt URI (Move-VM).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var jobOptions: JobOptions
    @OptionGroup var target: OneVM
    @Argument(help: ArgumentHelp("A directory, or a libvirt URI such as qemu+ssh://hv2/system.", valueName: "destination"))
    var destination: String
    @Flag(help: "To another host: copy disks that are not on storage both hosts share (Move-VM -IncludeStorage).")
    var includeStorage = false

    func run(_ client: VMMSClient) async throws {
        let vm = try await client.lookupVM(target.vm)
        let isURI = destination.contains("://")
        let where_ = isURI ? destination : global.servicePath(destination)
        let options: [String: DBusValue] = isURI ? ["IncludeStorage": .boolean(includeStorage)] : [:]
        try await JobFollower.run(jobOptions, "Moving \(target.vm)", client) { () throws(Failure) in
            try await client.vmCall(vm, "Move", [.string(where_), .vardict(options)], action: .vmMove)
        }
    }
}

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "List and cancel export, import and move jobs (Get-Job, Stop-Job).",
        subcommands: [JobList.self, JobCancel.self, JobWait.self])
}

struct JobList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the jobs still on the bus (finished ones stay 300 s).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run(_ client: VMMSClient) async throws {
        let jobs = try await client.objects(API.jobInterface)
        if output.json {
            Terminal.out(JSON.array(jobs.map { Views.objectJSON($0.path, $0.properties) }).rendered() + "\n")
            return
        }
        let vms = (try? await client.objects(API.vmInterface)) ?? []
        var table = Table(columns: [.init("Job"), .init("Operation"), .init("Target"), .init("State"), .init("Progress", .right),
                                    .init("Error")])
        table.rows = jobs.map { job in
            let p = job.properties
            let target = p["Target"]?.objectPath
            let targetName = target.flatMap { t in vms.first { $0.path == t }?.properties["Name"]?.string } ?? target?.rawValue ?? "-"
            let state = p["State"]?.string ?? "?"
            let style: Style = state == "Completed" ? .green : state == "Running" ? .cyan : .red
            return [Table.Cell(job.path.lastElement ?? job.path.rawValue), Table.Cell(p["Operation"]?.string ?? "?"),
                    Table.Cell(targetName), Table.Cell(state, style),
                    Table.Cell("\(p["PercentComplete"]?.uint32 ?? 0)%"), Table.Cell(p["ErrorMessage"]?.string ?? "")]
        }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }
}

/// A job by its number or object path.
func jobPath(_ key: String) throws(Failure) -> ObjectPath {
    if let path = ObjectPath(key), key.hasPrefix("/") { return path }
    guard let number = UInt64(key), let path = ObjectPath("/org/example/VMMS1/Job/\(number)") else {
        throw Failure(.usage, "\(key) is neither a job number nor a job's object path", hint: "`vmmsctl job list` shows the jobs.")
    }
    return path
}

struct JobCancel: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a running job; the VM and its files stay as before (Stop-Job).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job: its number (as `job list` shows) or object path.") var job: String

    func run(_ client: VMMSClient) async throws {
        let path = try jobPath(job)
        // Cancel needs the action of the job's operation: name that one when it is refused.
        let operation = (try? await client.properties(path, API.jobInterface))?["Operation"]?.string
        _ = try await client.call(path, API.jobInterface, "Cancel", action: Self.action(of: operation))
    }

    /// The polkit action of a job's `Operation` (the service checks the same one).
    static func action(of operation: String?) -> Failure.Action {
        switch operation {
        case "Export": .vmExport
        case "Import": .vmCreate
        case "Move": .vmMove
        default: .read
        }
    }
}

struct JobWait: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait for a job to end, with its progress bar (Wait-Job).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The job: its number or object path.") var job: String

    func run(_ client: VMMSClient) async throws {
        try await JobFollower.follow(try jobPath(job), "Job \(job)", client)
    }
}
