import ArgumentParser
import DBus
import Foundation

/// `vmmsctl checkpoint …`: Get-, Checkpoint-, Restore-, Rename-, Remove-VMCheckpoint.
struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "List, take, apply, rename and delete checkpoints (Get-VMCheckpoint, Checkpoint-VM, Restore-/Rename-/Remove-VMCheckpoint).",
        subcommands: [CheckpointList.self, CheckpointCreate.self, CheckpointApply.self, CheckpointRename.self, CheckpointDelete.self])
}

/// The checkpoints of one VM, in the VM's order (creation), with their properties.
func checkpoints(of vm: ObjectPath, _ client: VMMSClient) async throws(Failure) -> [(path: ObjectPath, properties: [String: DBusValue])] {
    let view = try await client.vm(vm)
    let order = (view.properties["Checkpoints"]?.arrayElements ?? []).compactMap(\.objectPath)
    let all = try await client.objects(API.checkpointInterface)
    return order.compactMap { path in all.first { $0.path == path } }
}

func lookupCheckpoint(vm: String, name: String, _ client: VMMSClient) async throws(Failure) -> ObjectPath {
    let list = try await checkpoints(of: try await client.lookupVM(vm), client)
    if let found = list.first(where: { $0.properties["Name"]?.string == name || $0.path.rawValue == name }) { return found.path }
    throw Failure(.notFound, "\(vm) has no checkpoint named \(name)", hint: "`vmmsctl checkpoint list \(vm)` shows them.")
}

struct CheckpointList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a VM's checkpoints as a tree, oldest first.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var target: OneVM

    func run(_ client: VMMSClient) async throws {
        let list = try await checkpoints(of: try await client.lookupVM(target.vm), client)
        if output.json {
            Terminal.out(JSON.array(list.map { Views.objectJSON($0.path, $0.properties) }).rendered() + "\n")
            return
        }
        // Depth from the Parent links: a child is indented under its parent.
        var depth: [ObjectPath: Int] = [:]
        for item in list {
            let parent = item.properties["Parent"]?.objectPath ?? .root
            depth[item.path] = parent == .root ? 0 : (depth[parent] ?? 0) + 1
        }
        var table = Table(columns: [.init("Name"), .init("Created"), .init("Memory")])
        table.rows = list.map { item in
            let name = item.properties["Name"]?.string ?? "?"
            let created = item.properties["CreationTime"]?.uint64.map { Self.date($0) } ?? "-"
            return [Table.Cell(String(repeating: "  ", count: depth[item.path] ?? 0) + name), Table.Cell(created),
                    Table.Cell(item.properties["IncludesMemory"]?.boolean == true ? "yes" : "no")]
        }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }

    static func date(_ seconds: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}

struct CheckpointCreate: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Take a checkpoint (disks, firmware variables and, while it runs, memory) and print its path (Checkpoint-VM).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM
    @Argument(help: "The checkpoint's name (as VM names: letters, digits, space, - _ .).") var name: String

    func run(_ client: VMMSClient) async throws {
        try await forEachVM([target.vm], client) { vmPath, _ throws(Failure) in
            let reply = try await client.vmCall(vmPath, "Checkpoint", [.string(name)], action: .vmCheckpoint, timeout: .seconds(1800))
            if let path = reply.first?.objectPath { Terminal.out(path.rawValue + "\n") }
        }
    }
}

struct CheckpointApply: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply a checkpoint to an Off or Saved VM (Restore-VMCheckpoint); it is Saved afterwards when the checkpoint holds memory.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM
    @Argument(help: "The checkpoint's name.") var name: String

    func run(_ client: VMMSClient) async throws {
        let path = try await lookupCheckpoint(vm: target.vm, name: name, client)
        _ = try await client.call(path, API.checkpointInterface, "Apply", action: .vmCheckpoint, timeout: .seconds(1800))
    }
}

struct CheckpointRename: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a checkpoint (Rename-VMCheckpoint).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM
    @Argument(help: "The checkpoint's name.") var name: String
    @Argument(help: "Its new name.") var newName: String

    func run(_ client: VMMSClient) async throws {
        let path = try await lookupCheckpoint(vm: target.vm, name: name, client)
        _ = try await client.call(path, API.checkpointInterface, "Rename", [.string(newName)], action: .vmCheckpoint)
    }
}

struct CheckpointDelete: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a checkpoint, merging its changes into its child (Remove-VMCheckpoint); --include-children deletes the subtree.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM
    @Argument(help: "The checkpoint's name.") var name: String
    @Flag(help: "Also delete every checkpoint taken after it on its branch (Remove-VMCheckpoint -IncludeAllChildCheckpoints).")
    var includeChildren = false

    func run(_ client: VMMSClient) async throws {
        let path = try await lookupCheckpoint(vm: target.vm, name: name, client)
        _ = try await client.call(path, API.checkpointInterface, "Delete", [.vardict(["IncludeChildren": .boolean(includeChildren)])],
                                  action: .vmCheckpoint, timeout: .seconds(1800))
    }
}
