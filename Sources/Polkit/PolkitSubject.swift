import DBus
import Foundation

/// The subject whose authorization is checked: who is asking polkit for permission.
///
/// Sent to polkitd as `(sa{sv})`, the subject struct of `org.freedesktop.PolicyKit1.Authority`.
public enum PolkitSubject: Sendable, Hashable {
    /// A D-Bus client identified by its unique bus name on the system bus (e.g. `":1.42"`),
    /// normally the sender of the method call being authorized. polkitd resolves the name to a
    /// process and user itself, which is the race-free way to identify a D-Bus caller.
    ///
    /// Encoded as `("system-bus-name", {"name": <s>})`.
    case systemBusName(String)

    /// A local process, identified by its pid and its start time (clock ticks after boot, field
    /// 22 of `/proc/PID/stat`), so that a reused pid is not mistaken for it. `startTime: 0`
    /// lets polkitd read it, and `uid: -1` lets it look the owner up (both racy).
    ///
    /// Encoded as `("unix-process", {"pid": <u>, "start-time": <t>, "uid": <i>})`.
    case unixProcess(pid: Int32, startTime: UInt64, uid: Int32)

    /// The running process `pid` with its start time and real uid read from `/proc` now.
    public static func process(pid: Int32) throws(PolkitError) -> PolkitSubject {
        guard pid > 0,
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let startTime = startTime(fromStat: stat),
              let uid = realUID(fromStatus: status) else {
            throw PolkitError(.invalidArgument, "there is no process \(pid) to read from /proc", method: "subject")
        }
        return .unixProcess(pid: pid, startTime: startTime, uid: uid)
    }

    /// Field 22 of `/proc/PID/stat`. The command name (field 2) may contain spaces and
    /// parentheses, so counting starts after its last `)`.
    static func startTime(fromStat stat: String) -> UInt64? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (the state).
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// The real uid, the first number of the `Uid:` line of `/proc/PID/status`.
    static func realUID(fromStatus status: String) -> Int32? {
        status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?
            .split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { Int32($0) }
    }

    /// The `(sa{sv})` polkitd expects; throws for a subject polkitd would only reject.
    public func dbusValue() throws(PolkitError) -> DBusValue {
        switch self {
        case .systemBusName(let name):
            guard name.hasPrefix(":"), Names.isValidBusName(name) else {
                throw PolkitError(.invalidArgument, "'\(name)' is not a unique D-Bus name", method: "subject")
            }
            return .structure([.string("system-bus-name"), .vardict(["name": .string(name)])])
        case .unixProcess(let pid, let startTime, let uid):
            guard pid > 0 else { throw PolkitError(.invalidArgument, "\(pid) is not a process ID", method: "subject") }
            return .structure([.string("unix-process"), .vardict([
                "pid": .uint32(UInt32(pid)), "start-time": .uint64(startTime), "uid": .int32(uid),
            ])])
        }
    }

    /// The uid the subject names itself, if any.
    var uid: UInt32? {
        if case .unixProcess(_, _, let uid) = self, uid >= 0 { return UInt32(uid) }
        return nil
    }
}
