/// The subject whose authorization is checked: who is asking polkit for permission.
///
/// Converted to a `PolkitSubject*` GObject only inside this module. Wraps `PolkitSubject`.
public enum PolkitSubject: Sendable, Hashable {
    /// A D-Bus client identified by its unique bus name on the system bus (e.g. `":1.42"`),
    /// normally the sender of the method call being authorized. polkitd resolves the name to a
    /// process and user itself, which is the race-free way to identify a D-Bus caller.
    ///
    /// Wraps `polkit_system_bus_name_new`.
    case systemBusName(String)

    /// A local process. Pass `startTime: 0` to let polkit read the start time from `/proc`, and
    /// `uid: -1` to let it look up the owner (both of which are racy; prefer real values).
    ///
    /// Wraps `polkit_unix_process_new_for_owner`.
    case unixProcess(pid: Int32, startTime: UInt64, uid: Int32)
}
