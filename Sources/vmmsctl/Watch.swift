import DBus
import Foundation

/// `list --watch`: one GetManagedObjects, then the service's signals keep the table current.
///
/// The subscriptions are in place before the inventory is read, so no change falls between
/// the two. NameOwnerChanged for org.example.VMMS1 covers a restarted service (whose new
/// objects are read again) and a stopped one (shown as not running until it is back). The bus
/// delivers every NameOwnerChanged (MatchRule has no arg0 key); ours are picked out here.
struct Watch {
    let client: VMMSClient
    let filter: NameFilter
    let json: Bool

    enum Event: Sendable {
        case propertiesChanged(ObjectPath, String, [String: DBusValue], invalidated: [String])
        case added(ObjectPath, [String: DBusValue])
        case removed(ObjectPath, [String])
        case ownerChanged(hasOwner: Bool)
        case redraw
        /// Once a second, for the Uptime column (local clock only, no bus traffic).
        case tick
    }

    func run() async throws {
        let connection = client.connection
        let (events, sink) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        let rules = [
            MatchRule(sender: API.service, pathNamespace: API.root, interface: API.properties, member: "PropertiesChanged"),
            MatchRule(sender: API.service, path: API.root, interface: API.objectManager),
            MatchRule(sender: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
                      member: "NameOwnerChanged"),
        ]
        var feeders: [Task<Void, Never>] = []
        defer { feeders.forEach { $0.cancel() } }
        for rule in rules {
            let stream: AsyncStream<DBusMessage>
            do {
                stream = try await connection.signals(matching: rule)
            } catch let error as DBusError {
                throw Failure(error, action: .read, remote: client.remote)
            }
            feeders.append(Task {
                for await message in stream {
                    if let event = Self.event(message) { sink.yield(event) }
                }
                sink.finish()   // the connection closed
            })
        }

        if !json {
            feeders.append(Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    sink.yield(.tick)
                }
            })
        }

        var screen = Screen(json: json)
        var inventory = try await loadOrWait()
        var redrawPending = false
        screen.draw(inventory, filter: filter)
        for await event in events {
            switch event {
            case .redraw:
                redrawPending = false
                screen.draw(inventory, filter: filter)
                continue
            case .tick:
                // Uptimes move only where the service publishes StartTime.
                if inventory?.vms.values.contains(where: { ($0.startTime ?? 0) > 0 }) == true {
                    screen.draw(inventory, filter: filter)
                }
                continue
            case .propertiesChanged(let path, let interface, let values, let invalidated):
                inventory?.apply(changed: path, interface: interface, values: values)
                if !invalidated.isEmpty, inventory?.vms[path] != nil || path == API.hostPath,
                   let fresh = try? await client.properties(path, interface) {
                    inventory?.apply(changed: path, interface: interface, values: fresh)
                }
            case .added(let path, let interfaces):
                inventory?.apply(added: path, interfaces: interfaces)
            case .removed(let path, let interfaces):
                inventory?.apply(removed: path, interfaces: interfaces)
            case .ownerChanged(let hasOwner):
                // A new vmmsd has new objects: read them all again; a gone one has none.
                inventory = hasOwner ? await reread() : nil
            }
            if !redrawPending {
                // Coalesce a burst of signals (a VM start changes several properties) into one frame.
                redrawPending = true
                Task {
                    try? await Task.sleep(for: .milliseconds(50))
                    sink.yield(.redraw)
                }
            }
        }
        throw Failure(.unavailable, "lost the connection to the bus")
    }

    /// The inventory, or nil (shown as "not running") while the service is not on the bus.
    private func loadOrWait() async throws(Failure) -> Inventory? {
        do throws(Failure) {
            return try await client.inventory()
        } catch {
            guard error.status == .unavailable, error.errorName != DBusError.Name.disconnected else { throw error }
            return nil
        }
    }

    /// The inventory of a service that just took the name; a few tries, since it may still
    /// be answering its first callers.
    private func reread() async -> Inventory? {
        for attempt in 0..<5 {
            if let inventory = try? await client.inventory() { return inventory }
            try? await Task.sleep(for: .milliseconds(100 << attempt))
        }
        return nil
    }

    static func event(_ message: DBusMessage) -> Event? {
        guard let path = message.path else { return nil }
        let body = message.body
        switch message.member {
        case "PropertiesChanged":
            guard let interface = body.first?.string, let values = body[safe: 1]?.stringKeyedDictionary else { return nil }
            let invalidated = body[safe: 2]?.arrayElements?.compactMap(\.string) ?? []
            return .propertiesChanged(path, interface, values, invalidated: invalidated)
        case "InterfacesAdded":
            guard let object = body.first?.objectPath, let interfaces = body[safe: 1]?.stringKeyedDictionary else { return nil }
            return .added(object, interfaces)
        case "InterfacesRemoved":
            guard let object = body.first?.objectPath, let interfaces = body[safe: 1]?.arrayElements?.compactMap(\.string) else { return nil }
            return .removed(object, interfaces)
        case "NameOwnerChanged":
            guard body.first?.string == API.service, let newOwner = body[safe: 2]?.string else { return nil }
            return .ownerChanged(hasOwner: !newOwner.isEmpty)
        default:
            return nil
        }
    }
}

/// Where frames go: on a terminal the table is redrawn in place; in a pipe or file every
/// change appends a new table after a blank line (or, with --json, one JSON line), and a
/// frame identical to the last one is not printed again.
struct Screen {
    let json: Bool
    let inPlace: Bool
    let colour: Bool
    private var last: String?

    init(json: Bool) {
        self.json = json
        inPlace = !json && Terminal.isTerminal(1)
        colour = Terminal.colourEnabled(fd: 1)
    }

    mutating func draw(_ inventory: Inventory?, filter: NameFilter) {
        let frame: String
        if let inventory {
            frame = ListRenderer.render(inventory, filter: filter, json: json, colour: colour, compact: true)
        } else if json {
            frame = "null\n"
        } else {
            frame = Failure.notRunning("org.example.VMMS1 is not on the bus") + "; waiting for it.\n"
        }
        guard frame != last else { return }
        if inPlace {
            Terminal.out("\u{1B}[H\u{1B}[2J" + frame + "\n" + Style.dim.apply("Watching for changes; Ctrl-C stops.", colour: colour) + "\n")
        } else {
            Terminal.out((last == nil || json ? "" : "\n") + frame)
        }
        last = frame
    }
}
