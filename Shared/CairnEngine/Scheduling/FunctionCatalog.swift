public import CairnCore
public import Foundation

/// The live functions with their event triggers compiled. Every `maximumAge` the catalog asks
/// the registry for the live versions (a sync shows up within that time) and reloads only
/// when they changed; a trigger expression is compiled once per function version.
///
/// An expression that fails to compile or evaluate is recorded on the function (logged with
/// its id), never a crash; such a trigger matches nothing.
public actor FunctionCatalog {
    /// One event trigger, compiled.
    public struct EventTrigger: Sendable {
        public var function: FunctionRecord
        public var trigger: FunctionTrigger
        public var expression: CairnCore.Expression?
    }

    let registry: any AppRegistry
    let clock: any WallClock
    let maximumAge: TimeInterval
    private var loadedAt: Date?
    private var triggers: [EventTrigger] = []
    private var bySlug: [String: FunctionRecord] = [:]
    private var byID: [UUID: FunctionRecord] = [:]
    /// Compile errors by function slug, from the last load.
    public private(set) var problems: [String: String] = [:]
    /// The live revisions the triggers were built from.
    private var versions: [UUID: FunctionRevision] = [:]
    /// Compiled expressions of the live function versions.
    private var compiled: [CompiledKey: Compiled] = [:]

    struct CompiledKey: Hashable {
        var function: UUID
        var version: Int
        var source: String
    }

    enum Compiled {
        case expression(CairnCore.Expression)
        case problem(String)
    }

    public init(registry: any AppRegistry, clock: any WallClock, maximumAge: TimeInterval = 1) {
        self.registry = registry
        self.clock = clock
        self.maximumAge = maximumAge
    }

    /// Event triggers whose name pattern matches `eventName` (expressions not yet evaluated).
    public func candidates(for eventName: String) async throws -> [EventTrigger] {
        try await refreshIfStale()
        return triggers.filter { $0.trigger.matches(eventName: eventName) }
    }

    /// The live function with slug `slug`.
    public func function(slug: String) async throws -> FunctionRecord? {
        try await refreshIfStale()
        if let found = bySlug[slug] { return found }
        // A function synced a moment ago: look once more before saying no.
        loadedAt = nil
        try await refreshIfStale()
        return bySlug[slug]
    }

    /// The live function with id `id`.
    public func function(id: UUID) async throws -> FunctionRecord? {
        try await refreshIfStale()
        return byID[id]
    }

    /// Every live cron trigger, with its function.
    public func cronTriggers() async throws -> [(function: FunctionRecord, schedule: CronSchedule, jitter: ConfigDuration?)] {
        try await refreshIfStale()
        return byID.values.sorted { $0.slug < $1.slug }.flatMap { function in
            function.config.triggers.compactMap { trigger in
                guard case .cron(let schedule, let jitter) = trigger else { return nil }
                return (function, schedule, jitter)
            }
        }
    }

    /// The live versions, by function id, as last loaded.
    public func liveVersions() async throws -> [UUID: Int] {
        try await refreshIfStale()
        return versions.mapValues(\.version)
    }

    /// Drops the cache, so the next read loads the registry.
    public func invalidate() {
        loadedAt = nil
    }

    /// Asks the registry for the live versions now, whatever the cache's age, and reloads if
    /// they changed: the router calls it once per batch, so that an event sent after a sync
    /// completed is matched against the functions that sync added.
    public func refresh() async throws {
        // Stale, but loaded: the next look compares versions and reloads only on a change.
        if loadedAt != nil { loadedAt = .distantPast }
        try await refreshIfStale()
    }

    func refreshIfStale() async throws {
        let now = clock.now
        if let loadedAt, now.timeIntervalSince(loadedAt) < maximumAge { return }
        let versions = try await registry.liveFunctionVersions()
        if loadedAt != nil, versions == self.versions {
            loadedAt = now
            return
        }
        let functions = try await registry.liveFunctions()
        var triggers: [EventTrigger] = []
        var problems: [String: String] = [:]
        var compiled: [CompiledKey: Compiled] = [:]
        for function in functions {
            for trigger in function.config.triggers {
                guard case .event(_, let source) = trigger else { continue }
                var expression: CairnCore.Expression?
                if let source {
                    let key = CompiledKey(function: function.id, version: function.version, source: source)
                    let result = self.compiled[key] ?? Self.compile(source)
                    compiled[key] = result
                    switch result {
                    case .expression(let ready): expression = ready
                    case .problem(let problem):
                        problems[function.slug] = problem
                        continue
                    }
                }
                triggers.append(EventTrigger(function: function, trigger: trigger, expression: expression))
            }
        }
        self.triggers = triggers
        self.compiled = compiled
        bySlug = Dictionary(functions.map { ($0.slug, $0) }, uniquingKeysWith: { first, _ in first })
        byID = Dictionary(functions.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.problems = problems
        self.versions = Dictionary(
            functions.map { ($0.id, FunctionRevision(version: $0.version, paused: $0.pausedAt != nil)) }, uniquingKeysWith: { first, _ in first })
        loadedAt = now
    }

    static func compile(_ source: String) -> Compiled {
        do { return .expression(try CairnCore.Expression(compiling: source)) } catch {
            return .problem("trigger expression \(source): \(error)")
        }
    }
}
