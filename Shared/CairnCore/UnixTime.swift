public import Foundation

extension Date {
    /// Milliseconds since the Unix epoch, rounded down: the unit of event `ts`, ULID times and
    /// every timestamp Cairn's wire formats carry.
    public var unixMilliseconds: Int64 {
        Int64((timeIntervalSince1970 * 1_000).rounded(.down))
    }

    /// Microseconds since the Unix epoch, rounded: the unit of GCRA state.
    public var unixMicroseconds: Int64 {
        Int64((timeIntervalSince1970 * 1_000_000).rounded())
    }

    public init(unixMicroseconds: Int64) {
        self.init(timeIntervalSince1970: Double(unixMicroseconds) / 1_000_000)
    }

    public init(unixMilliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(unixMilliseconds) / 1_000)
    }
}
