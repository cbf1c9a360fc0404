public import Foundation

/// The source of wall-clock time for services.
///
/// Core decisions take `now` as a value; services take a `WallClock` so tests can drive time by
/// hand (see `ManualClock` in CairnTesting) instead of sleeping.
public protocol WallClock: Sendable {
    /// The current time.
    var now: Date { get }
}

/// The process's real wall clock.
public struct SystemWallClock: WallClock {
    /// Creates the system clock.
    public init() {}

    /// `Date()`: the current system time.
    public var now: Date { Date() }
}
