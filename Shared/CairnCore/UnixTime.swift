public import Foundation

extension Date {
    /// Milliseconds since the Unix epoch, rounded down: the unit of event `ts`, ULID times and
    /// every timestamp Cairn's wire formats carry.
    public var unixMilliseconds: Int64 {
        Int64((timeIntervalSince1970 * 1_000).rounded(.down))
    }
}
