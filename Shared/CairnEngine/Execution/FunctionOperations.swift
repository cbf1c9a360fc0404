public import CairnCore
public import Foundation

/// Why an operation (on runs, functions or accounts) was refused; `field` names the request
/// field at fault and `rule` what it must be. `description` reads `<field>: <rule>` and never
/// holds a password or a token.
public struct OperationRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// Who must act, and how an HTTP layer answers.
    public enum Kind: Sendable, Hashable {
        /// The input breaks a rule (400).
        case invalid
        /// The caller is not signed in, or its credentials do not match (401).
        case unauthorized
        /// The caller is signed in but its role does not allow this (403).
        case forbidden
        /// The thing to create exists already, or changed meanwhile (409).
        case conflict
        /// The thing named does not exist (404).
        case notFound
    }
    public var kind: Kind
    public var field: String
    public var rule: String
    public var description: String { "\(field): \(rule)" }

    public init(kind: Kind, field: String, rule: String) {
        self.kind = kind
        self.field = field
        self.rule = rule
    }
}

/// Operating on a function's runs as a whole (docs/operations.md): bulk cancel and replay,
/// and pausing. The API, the CLI and the dashboard all come through here.
public struct FunctionOperations: Sendable {
    let registry: any AppRegistry
    /// Finds functions by slug without loading every function per request.
    let catalog: FunctionCatalog
    let runs: any RunQueries
    let jobs: any BulkStore
    let clock: any WallClock
    private let ids = EventStamper()

    public init(registry: any AppRegistry, catalog: FunctionCatalog, runs: any RunQueries, jobs: any BulkStore, clock: any WallClock) {
        self.registry = registry
        self.catalog = catalog
        self.runs = runs
        self.jobs = jobs
        self.clock = clock
    }

    /// The statuses a bulk replay takes when none are given.
    public static let defaultReplayStatuses = ["Failed", "Cancelled"]

    /// The live function with slug `slug`.
    public func function(slug: String) async throws -> FunctionRecord {
        guard let function = try await catalog.function(slug: slug) else {
            throw OperationRefusal(kind: .notFound, field: "function_id", rule: "must name a synced function, got \"\(slug)\"")
        }
        return function
    }

    /// What a bulk job takes: the runs of one function, created in a time range, whose trigger
    /// event an expression is true for.
    public struct Selection: Sendable {
        public var function: FunctionRecord
        public var createdFrom: Date?
        public var createdUntil: Date?
        public var expression: String?
        /// For a replay; a cancel takes the runs that have not ended.
        public var statuses: [String]?
        public var idempotencyKey: String?

        public init(
            function: FunctionRecord, createdFrom: Date? = nil, createdUntil: Date? = nil, expression: String? = nil, statuses: [String]? = nil,
            idempotencyKey: String? = nil
        ) {
            self.function = function
            self.createdFrom = createdFrom
            self.createdUntil = createdUntil
            self.expression = expression
            self.statuses = statuses
            self.idempotencyKey = idempotencyKey
        }
    }

    /// Records a bulk job for a `BulkOperator` to work; returns it (the one stored before,
    /// when its idempotency key was used already).
    public func submit(_ kind: BulkJob.Kind, _ selection: Selection, skipReason: String? = nil) async throws -> BulkJob {
        if let expression = selection.expression {
            do { _ = try CairnCore.Expression(compiling: expression) } catch {
                throw OperationRefusal(kind: .invalid, field: "if", rule: "must be a valid expression over `event`: \(error)")
            }
        }
        let statuses: [String]
        switch kind {
        case .cancel:
            guard selection.statuses == nil else {
                throw OperationRefusal(kind: .invalid, field: "statuses", rule: "is for replays; a cancellation takes the runs that have not ended")
            }
            statuses = ["Queued", "Running"]
        case .replay:
            statuses = selection.statuses ?? Self.defaultReplayStatuses
            if let unknown = statuses.first(where: { !RunFilter.allStatuses.contains($0) }) {
                throw OperationRefusal(kind: .invalid, field: "statuses", rule: "must hold run statuses (\(RunFilter.allStatuses.joined(separator: ", "))), got \"\(unknown)\"")
            }
            guard !statuses.contains("Queued") && !statuses.contains("Running") else {
                throw OperationRefusal(kind: .invalid, field: "statuses", rule: "must hold ended statuses only: a run that has not ended cannot be replayed")
            }
        }
        let now = clock.now
        // Never later than now: the runs a replay starts are not replayed in turn.
        let until = min(selection.createdUntil ?? now, now)
        if let from = selection.createdFrom, from >= until {
            throw OperationRefusal(kind: .invalid, field: "from", rule: "must be before until (or now)")
        }
        let id = ids.accept([Event(name: "bulk")], now: now)[0].id
        var job = BulkJob(
            id: id, kind: kind, idempotencyKey: selection.idempotencyKey, functionID: selection.function.id, functionSlug: selection.function.slug, statuses: statuses,
            createdFrom: selection.createdFrom, createdUntil: until, skipReason: skipReason, expression: selection.expression, createdAt: now)
        job.total = try await runs.count(job.filter)
        return try await jobs.createBulk(job)
    }

    /// Pauses the function: from now its events start no run (each is recorded as a `Skipped`
    /// run, reason `paused`). Returns when it was paused (the first pause's date, when it was
    /// paused already).
    public func pause(_ function: FunctionRecord) async throws -> Date {
        let now = clock.now
        return try await registry.setPaused(functionID: function.id, at: now) ?? now
    }

    /// Resumes the function; with `replay`, also starts a bulk replay of the runs it skipped
    /// while paused, and returns it.
    public func resume(_ function: FunctionRecord, replay: Bool) async throws -> BulkJob? {
        // The registry's answer, not the catalog's copy, which may be a second old.
        guard let pausedAt = try await registry.setPaused(functionID: function.id, at: nil) else {
            throw OperationRefusal(kind: .conflict, field: "function_id", rule: "must name a paused function; \(function.slug) is running")
        }
        guard replay else { return nil }
        var selection = Selection(function: function, createdFrom: pausedAt, statuses: ["Skipped"])
        selection.idempotencyKey = "resume:\(function.id):\(pausedAt.unixMilliseconds)"
        return try await submit(.replay, selection, skipReason: SkipReason.paused.rawValue)
    }
}
