/// A dependency whose health decides whether a role is ready to take traffic.
///
/// Adapters provide probes (Postgres answers a query, Redis answers `PING`); the HTTP layer
/// serves them on `/readyz`. A probe that throws or does not answer within the readiness
/// timeout counts as not ready.
public protocol ReadinessProbe: Sendable {
    /// Short, stable name shown in `/readyz` (`postgres`, `redis`).
    var name: String { get }

    /// Returns when the dependency answered; throws when it did not.
    func check() async throws
}

/// The outcome of one readiness probe.
public struct ProbeResult: Sendable, Equatable {
    /// The probe's name.
    public var name: String
    /// `nil` when the dependency answered, else why it did not.
    public var failure: String?

    /// Creates a result.
    public init(name: String, failure: String?) {
        self.name = name
        self.failure = failure
    }

    /// Whether the dependency answered.
    public var isReady: Bool { failure == nil }
}

/// Runs a role's readiness probes concurrently, each bounded by a timeout.
public struct Readiness: Sendable {
    /// The probes checked on every call, in display order.
    public let probes: [any ReadinessProbe]
    /// How long one probe may take before it counts as not ready. Default 2 s.
    public let timeout: Duration

    /// Creates a readiness check over `probes`.
    public init(probes: [any ReadinessProbe], timeout: Duration = .seconds(2)) {
        self.probes = probes
        self.timeout = timeout
    }

    /// Checks every probe; the results keep the probes' order.
    public func check() async -> [ProbeResult] {
        await withTaskGroup(of: (Int, ProbeResult).self) { group in
            for (index, probe) in probes.enumerated() {
                group.addTask { [timeout] in
                    (index, await Self.run(probe, timeout: timeout))
                }
            }
            var results = [ProbeResult?](repeating: nil, count: probes.count)
            for await (index, result) in group {
                results[index] = result
            }
            return results.compactMap { $0 }
        }
    }

    private static func run(_ probe: any ReadinessProbe, timeout: Duration) async -> ProbeResult {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await probe.check() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw ProbeTimeout(timeout: timeout)
                }
                defer { group.cancelAll() }
                try await group.next()
            }
            return ProbeResult(name: probe.name, failure: nil)
        } catch {
            return ProbeResult(name: probe.name, failure: String(describing: error))
        }
    }
}

/// A readiness probe did not answer in time.
struct ProbeTimeout: Error, CustomStringConvertible {
    var timeout: Duration
    var description: String { "did not answer within \(timeout)" }
}
