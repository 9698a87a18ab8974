/// One change of a model's records, as the model made it.
///
/// Models hand their changes to a `ChangeSink` while still holding their own lock, so a sink
/// sees every model's changes in the order they happened and can publish them in that order.
public enum StoreChange<Record: Sendable>: Sendable {
    case added(Record)
    case updated(old: Record, new: Record)
    case removed(Record)

    /// The record as it is after the change (before it, for a removal).
    public var record: Record {
        switch self {
        case .added(let record), .removed(let record): record
        case .updated(_, let new): new
        }
    }
}

/// Receives a model's changes in order, inside the model's lock: it must not call back into
/// the model, and must not block.
public typealias ChangeSink<Record: Sendable> = @Sendable ([StoreChange<Record>]) -> Void
