import DBus

/// vmmsctl's view of the service: typed calls over one bus connection, D-Bus errors turned
/// into `Failure`s, and the polkit retry (InteractiveAuthorizationRequired → the same call
/// again with ALLOW_INTERACTIVE_AUTHORIZATION, with a textual agent asking on this terminal).
actor VMMSClient {
    let connection: DBusConnection
    let interaction: Interaction
    let remote: Bool
    private var agent: PolkitAgent?
    /// Once a call has gone interactive, the following ones of this run carry the flag too,
    /// so polkit's "keep" lets them through without another round trip.
    private var interactive: Bool

    /// How long polkit may wait for a password (the service gives its check 300 s).
    static let interactiveTimeout: Duration = .seconds(310)

    init(_ options: GlobalOptions) throws(Failure) {
        let (bus, description) = options.bus
        do {
            connection = try DBusConnection(bus: bus)
        } catch {
            throw Failure.busUnreachable(error, what: description)
        }
        interaction = options.interaction
        remote = options.isRemote
        interactive = options.interaction == .always
    }

    func close() {
        agent?.stop()
        agent = nil
        connection.close()
    }

    // MARK: Calls

    func call(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue] = [],
              action: Failure.Action, timeout: Duration = .seconds(60)) async throws(Failure) -> [DBusValue] {
        do {
            return try await send(path, interface, member, body, timeout: timeout)
        } catch let error as DBusError where error.name == DBusError.Name.interactiveAuthorizationRequired
                    && !interactive && interaction == .onTerminal && Terminal.isInteractive {
            if agent == nil { agent = PolkitAgent() }
            interactive = true
            do {
                return try await send(path, interface, member, body, timeout: timeout)
            } catch {
                throw failure(error, action)
            }
        } catch {
            throw failure(error, action)
        }
    }

    private func send(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue],
                      timeout: Duration) async throws -> [DBusValue] {
        try await connection.call(destination: API.service, path: path, interface: interface, member: member, body,
                                  allowInteractiveAuthorization: interactive,
                                  timeout: interactive ? max(timeout, Self.interactiveTimeout) : timeout)
    }

    private func failure(_ error: any Error, _ action: Failure.Action) -> Failure {
        if let error = error as? DBusError { return Failure(error, action: action, remote: remote) }
        if let error = error as? Failure { return error }
        return Failure(.failed, "\(error)")
    }

    // MARK: The API's reads

    /// The whole inventory in one call.
    func inventory() async throws(Failure) -> Inventory {
        let reply = try await call(API.root, API.objectManager, "GetManagedObjects", action: .read)
        return try Inventory(managedObjects: reply)
    }

    /// A VM by name, UUID or object path (LookupVM resolves the first two).
    func lookupVM(_ key: String) async throws(Failure) -> ObjectPath {
        if key.hasPrefix(API.vmPrefix), let path = ObjectPath(key) { return path }
        let reply = try await call(API.hostPath, API.hostInterface, "LookupVM", [.string(key)], action: .read)
        guard let path = reply.first?.objectPath else { throw Failure(.failed, "LookupVM returned \(DBusValue.signature(of: reply))") }
        return path
    }

    func properties(_ path: ObjectPath, _ interface: String) async throws(Failure) -> [String: DBusValue] {
        let reply = try await call(path, API.properties, "GetAll", [.string(interface)], action: .read)
        guard let values = reply.first?.stringKeyedDictionary else {
            throw Failure(.failed, "GetAll returned \(DBusValue.signature(of: reply))")
        }
        return values
    }

    /// Every published object with `interface`, and its properties, from one GetManagedObjects.
    func objects(_ interface: String) async throws(Failure) -> [(path: ObjectPath, properties: [String: DBusValue])] {
        let reply = try await call(API.root, API.objectManager, "GetManagedObjects", action: .read)
        guard let entries = reply.first?.arrayElements else { throw Failure(.failed, "GetManagedObjects returned \(DBusValue.signature(of: reply))") }
        return entries.compactMap { entry -> (path: ObjectPath, properties: [String: DBusValue])? in
            guard case .structure(let pair) = entry, pair.count == 2, let path = pair[0].objectPath,
                  let values = pair[1].stringKeyedDictionary?[interface]?.stringKeyedDictionary else { return nil }
            return (path, values)
        }.sorted { $0.path.rawValue < $1.path.rawValue }
    }

    /// The object with `interface` named `key` (its Name property) or at that path.
    func object(_ interface: String, named key: String, what: String, listing: String) async throws(Failure)
        -> (path: ObjectPath, properties: [String: DBusValue]) {
        let all = try await objects(interface)
        if let found = all.first(where: { $0.path.rawValue == key || $0.properties["Name"]?.string == key }) { return found }
        throw Failure(.notFound, "no \(what) is named \(key)", hint: "`\(listing)` shows them.")
    }

    func vm(_ path: ObjectPath) async throws(Failure) -> VMView {
        VMView(path: path, properties: try await properties(path, API.vmInterface))
    }

    func host() async throws(Failure) -> [String: DBusValue] {
        try await properties(API.hostPath, API.hostInterface)
    }

    func set(_ path: ObjectPath, _ interface: String, _ property: String, _ value: DBusValue,
             action: Failure.Action) async throws(Failure) {
        _ = try await call(path, API.properties, "Set", [.string(interface), .string(property), .variant(value)], action: action)
    }

    func vmCall(_ path: ObjectPath, _ member: String, _ body: [DBusValue] = [], action: Failure.Action,
                timeout: Duration = .seconds(300)) async throws(Failure) -> [DBusValue] {
        try await call(path, API.vmInterface, member, body, action: action, timeout: timeout)
    }
}
