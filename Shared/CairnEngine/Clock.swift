public import Foundation

/// The source of wall-clock time for services.
///
/// Core decisions take `now` as a value; services take a `WallClock` so tests can drive time by
/// hand (see `ManualClock` in CairnTesting) instead of sleeping.
public protocol WallClock: Sendable {
    /// The current time.
    var now: Date { get }

    /// Waits `duration` of this clock's time (a manual clock waits until a test moves it).
    func sleep(for duration: Duration) async throws
}

extension WallClock {
    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}

/// The process's real wall clock.
public struct SystemWallClock: WallClock {
    /// Creates the system clock.
    public init() {}

    /// `Date()`: the current system time.
    public var now: Date { Date() }
}
