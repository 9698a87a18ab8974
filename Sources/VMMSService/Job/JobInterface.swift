import DBus
import VMMSModel

/// `org.example.VMMS1.Job` at `/org/example/VMMS1/Job/<n>`: one object per Export, Import or
/// Move, like Hyper-V's Msvm_ConcreteJob.
enum JobKind: ObjectKind {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.Job",
        methods: [
            .init("Cancel"),
        ],
        properties: [
            .init("Operation", "s", changeSignal: .const),
            .init("Target", "o"),
            .init("State", "s"),
            .init("PercentComplete", "u"),
            .init("ErrorName", "s"),
            .init("ErrorMessage", "s"),
            .init("StartedByUID", "u", changeSignal: .const),
            .init("StartTime", "t", changeSignal: .const),
        ],
        signals: [
            .init("Completed", [.init("state", "s"), .init("error_name", "s"), .init("error_message", "s")]),
        ])

    static let hostList: String? = "Jobs"

    static func path(of record: JobRecord) -> ObjectPath { Paths.job(record.number) }

    static func values(of record: JobRecord) -> [String: DBusValue] {
        [
            "Operation": .string(record.operation),
            "Target": .objectPath(ObjectPath(record.target) ?? .root),
            "State": .string(record.state.rawValue),
            "PercentComplete": .uint32(record.percentComplete),
            "ErrorName": .string(record.errorName),
            "ErrorMessage": .string(record.errorMessage),
            "StartedByUID": .uint32(record.startedByUID),
            "StartTime": .uint64(record.startTime),
        ]
    }

    /// The action that starts (and so may cancel) each operation.
    static func action(of operation: String) -> Action {
        switch operation {
        case "Export": .vmExport
        case "Move": .vmMove
        default: .vmCreate
        }
    }
}

/// The handlers of one job object.
struct JobInterface: DBusInterface {
    let description = JobKind.interface
    let number: UInt64
    let services: Services

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        try await translatingErrors {
            switch call.member {
            case "Cancel": try await cancel(call)
            default: throw VMMSError.notSupported("\(call.member) is not implemented")
            }
            return []
        }
    }

    /// Authorized as the operation itself (vm.export, vm.create, vm.move) for the VM; a job
    /// that has finished cannot be cancelled.
    private func cancel(_ call: MethodCall) async throws {
        guard let record = services.jobs.jobs.record(number) else {
            throw VMMSError.notFound("the job \(Paths.job(number)) does not exist (finished jobs disappear after 300 s)")
        }
        try await services.authorizer.authorize(call, JobKind.action(of: record.operation),
                                                AuthorizationDetails(verb: "Cancel", vmName: record.vmName.isEmpty ? nil : record.vmName,
                                                                     vmUUID: record.vmUUID))
        guard services.jobs.cancel(number) else {
            let state = services.jobs.jobs.record(number)?.state ?? record.state
            throw VMMSError.invalidState(current: state.rawValue, message: "the job \(Paths.job(number)) has already finished; nothing to cancel")
        }
        services.audit(await call.caller(), "Cancel \(record.operation) job \(number) of \(record.vmName)")
    }
}

extension ObjectRegistry.Route {
    static func job(_ services: Services) -> Self {
        Self(owns: { Paths.jobNumber(of: $0) != nil },
             handlers: { path in Paths.jobNumber(of: path).map { [JobInterface(number: $0, services: services)] } ?? [] },
             readDetails: { path in
                 let record = Paths.jobNumber(of: path).flatMap { services.jobs.jobs.record($0) }
                 return AuthorizationDetails(verb: "", vmName: record.flatMap { $0.vmName.isEmpty ? nil : $0.vmName }, vmUUID: record?.vmUUID)
             },
             missing: { VMMSError.notFound("the job at \($0) does not exist (finished jobs disappear after 300 s)").dbusError })
    }
}
