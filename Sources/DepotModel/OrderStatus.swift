/// An order's status (docs/interface.md §3): one vocabulary for the saga, the projections and
/// the edge.
public enum OrderStatus: String, Sendable, Codable, CaseIterable {
    case pending, reserved, confirmed, rejected, cancelled

    /// No event changes it any more.
    public var isFinal: Bool { self == .confirmed || self == .rejected || self == .cancelled }
}
