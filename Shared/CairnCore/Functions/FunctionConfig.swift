/// One function of an app, as an SDK describes it when it syncs (docs/protocol.md §1.2), parsed and
/// checked. `json` keeps the object exactly as sent, unknown fields included; the typed fields
/// are what the engine acts on.
///
/// Expressions (trigger `expression`, every `key`, `if` and `priority.run`) are checked by
/// compiling them; they are kept as source text, and each consumer compiles them once per
/// function version.
public struct FunctionConfig: Sendable, Hashable {
    /// The function's slug, `<app id>-<function id>`: what `fnId`, `invoke` and `function_id`
    /// name.
    public var id: String
    /// The display name; the slug when none was given.
    public var name: String
    /// Event and cron triggers, 1 to `maximumTriggers`.
    public var triggers: [FunctionTrigger]
    /// Where and how the function is called; SDKs send one step, `step`.
    public var steps: [FunctionStep]
    /// Retries after a failed attempt (attempts = retries + 1): the step's `retries.attempts`,
    /// else the function's, else 4.
    public var retries: Int
    /// Up to `maximumConcurrencyLimits` request limits and one run-level limit.
    public var concurrency: [ConcurrencyLimit]
    public var throttle: Throttle?
    public var rateLimit: RateLimit?
    public var debounce: Debounce?
    public var batchEvents: BatchEvents?
    /// Events that cancel a run, up to `maximumCancels`.
    public var cancel: [CancelOn]
    /// An expression whose value makes runs unique for 24 hours.
    public var idempotency: String?
    public var priority: Priority?
    public var timeouts: FunctionTimeouts?
    public var singleton: Singleton?
    /// The function object exactly as the SDK sent it.
    public var json: JSONObject

    public static let maximumTriggers = 10
    public static let maximumCancels = 5
    public static let maximumConcurrencyLimits = 2
    public static let maximumRetries = 20
    public static let defaultRetries = 4

    /// The rate limit that applies: the one `idempotency` stands for (limit 1 per 24 hours,
    /// keyed by the expression), which replaces `rateLimit` as in Inngest; else `rateLimit`.
    public var effectiveRateLimit: RateLimit? {
        guard let idempotency else { return rateLimit }
        return RateLimit(limit: 1, period: ConfigDuration(milliseconds: 86_400_000), key: idempotency)
    }

    /// Parses and checks one element of a sync's `functions` array.
    public init(parsing value: JSONValue) throws(FunctionConfigError) {
        guard case .object(let object) = value else {
            throw FunctionConfigError(functionID: nil, field: "", rule: "must be an object")
        }
        var reader = ConfigReader(object: object, path: "", functionID: nil)
        let id = try reader.requiredString("id", maximumLength: 255)
        reader.functionID = id
        self.id = id
        self.json = object
        self.name = try reader.optionalString("name") ?? id

        let triggerValues = try reader.array("triggers", required: true, range: 1...Self.maximumTriggers)
        var triggers: [FunctionTrigger] = []
        for (index, element) in triggerValues.enumerated() {
            triggers.append(try FunctionTrigger(reader.object(element, at: "triggers[\(index)]")))
        }
        for (index, trigger) in triggers.enumerated() {
            let earlier = triggers[..<index]
            if earlier.contains(trigger) {
                throw reader.error("triggers[\(index)]", "repeats an earlier trigger")
            }
            if case .cron(let schedule, _) = trigger, earlier.contains(where: { $0.cronText == schedule.text }) {
                throw reader.error("triggers[\(index)].cron", "repeats an earlier cron trigger's schedule \"\(schedule.text)\"")
            }
        }
        self.triggers = triggers

        guard let stepsObject = try reader.optionalObject("steps"), !stepsObject.isEmpty else {
            throw reader.error("steps", "must be an object with at least one step")
        }
        var steps: [FunctionStep] = []
        for (key, element) in stepsObject {
            steps.append(try FunctionStep(reader.object(element, at: "steps.\(key)"), key: key))
        }
        self.steps = steps
        let functionRetries = try reader.section("retries") { retries throws(FunctionConfigError) in
            try retries.optionalInt("attempts", range: 0...Self.maximumRetries)
        } ?? nil
        self.retries = steps.first?.retries ?? functionRetries ?? Self.defaultRetries

        self.concurrency = try ConcurrencyLimit.parse(reader, object["concurrency"])
        self.throttle = try reader.section("throttle", Throttle.init)
        self.rateLimit = try reader.section("rateLimit", RateLimit.init)
        self.debounce = try reader.section("debounce", Debounce.init)
        self.batchEvents = try reader.section("batchEvents", BatchEvents.init)
        let cancelValues = try reader.array("cancel", required: false, range: 0...Self.maximumCancels)
        var cancel: [CancelOn] = []
        for (index, element) in cancelValues.enumerated() {
            cancel.append(try CancelOn(reader.object(element, at: "cancel[\(index)]")))
        }
        self.cancel = cancel
        self.idempotency = try reader.optionalExpression("idempotency")
        self.priority = try reader.section("priority", Priority.init)
        self.timeouts = try reader.section("timeouts", FunctionTimeouts.init)
        self.singleton = try reader.section("singleton", Singleton.init)
        if batchEvents != nil {
            // A batch run starts for many events at once, which these options cannot apply to.
            let conflicts: [(String, Bool)] = [
                ("cancel", !cancel.isEmpty), ("debounce", debounce != nil), ("singleton", singleton != nil),
                ("priority.run", priority?.run != nil),
            ]
            for (field, present) in conflicts where present {
                throw reader.error(field, "cannot be used with batchEvents")
            }
        }
    }
}

/// What starts a function.
public enum FunctionTrigger: Sendable, Hashable {
    /// An event named `name` (which may end in a wildcard after `/` or `.`), filtered by
    /// `expression` when present.
    case event(name: String, expression: String?)
    /// A cron schedule, optionally spread by a random delay of up to `jitter`.
    case cron(CronSchedule, jitter: ConfigDuration?)

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        let hasEvent = reader.object["event"] != nil
        let hasCron = reader.object["cron"] != nil
        guard hasEvent != hasCron else {
            throw reader.error("", "must have exactly one of event or cron")
        }
        if hasEvent {
            let name = try reader.requiredString("event", maximumLength: EventValidation.maximumNameLength)
            if let star = name.firstIndex(of: "*") {
                let before = star == name.startIndex ? nil : name[name.index(before: star)]
                guard name.index(after: star) == name.endIndex, before == "/" || before == "." else {
                    throw reader.error("event", "a wildcard may only end the name, after / or . (app/* or app/user.*), got \"\(name)\"")
                }
            }
            self = .event(name: name, expression: try reader.optionalExpression("expression"))
        } else {
            let text = try reader.requiredString("cron", maximumLength: 255)
            let schedule: CronSchedule
            do { schedule = try CronSchedule(parsing: text) } catch { throw reader.error("cron", error.rule) }
            // An empty or zero jitter is none; any other must be from 1 s to 5 m.
            var jitter: ConfigDuration?
            if let text = try reader.optionalString("jitter"), !text.isEmpty {
                let parsed: ConfigDuration
                do { parsed = try ConfigDuration(parsing: text) } catch { throw reader.error("jitter", error.rule) }
                if parsed.milliseconds != 0 { jitter = try reader.optionalDuration("jitter", within: 1_000...300_000) }
            }
            self = .cron(schedule, jitter: jitter)
        }
    }

    /// The schedule's text, for a cron trigger.
    public var cronText: String? {
        guard case .cron(let schedule, _) = self else { return nil }
        return schedule.text
    }

    /// Whether an event named `eventName` fires this trigger's name pattern (the expression is
    /// checked separately). Cron triggers match no event.
    public func matches(eventName: String) -> Bool {
        guard case .event(let pattern, _) = self else { return false }
        if pattern.hasSuffix("*") { return eventName.hasPrefix(pattern.dropLast()) }
        return pattern == eventName
    }
}

/// How the server calls a function.
public struct FunctionStep: Sendable, Hashable {
    /// The key in `steps` (SDKs send `step`).
    public var id: String
    public var name: String
    /// `http`, or `ws` for connect workers.
    public var runtimeType: String
    /// The URL to call, already carrying `fnId` and `stepId`. Its scheme picks the transport:
    /// `http(s)` calls the app's serve endpoint, `ws(s)` (connect workers, `wss://connect?…`)
    /// goes through the connect gateway, whatever `runtimeType` says — Python connect apps
    /// declare their `on_failure` functions as `http` with a `wss://` URL.
    public var url: String
    /// The step's `retries.attempts`, if given.
    public var retries: Int?

    /// Whether calls go to connect workers through the gateway rather than over HTTP.
    public var usesConnect: Bool { url.hasPrefix("ws://") || url.hasPrefix("wss://") }

    init(_ reader: ConfigReader, key: String) throws(FunctionConfigError) {
        id = key
        name = try reader.optionalString("name") ?? key
        guard let runtime = try reader.optionalObject("runtime") else {
            throw reader.error("runtime", "is required")
        }
        let runtimeReader = reader.nested(runtime, at: "runtime")
        runtimeType = try runtimeReader.optionalString("type") ?? "http"
        guard runtimeType == "http" || runtimeType == "ws" else {
            throw runtimeReader.error("type", "must be http or ws, got \"\(runtimeType)\"")
        }
        url = try runtimeReader.optionalString("url") ?? ""
        guard ["http://", "https://", "ws://", "wss://"].contains(where: url.hasPrefix) else {
            throw runtimeReader.error("url", "must be an http:// or https:// URL, or ws:// or wss:// for a connect app, got \"\(url)\"")
        }
        retries = try reader.section("retries") { retries throws(FunctionConfigError) in
            try retries.optionalInt("attempts", range: 0...FunctionConfig.maximumRetries)
        } ?? nil
    }
}

/// A limit on SDK requests in progress at once (or, with `wholeRun`, on runs in progress),
/// per key value when `key` is set.
public struct ConcurrencyLimit: Sendable, Hashable {
    public enum Scope: String, Sendable, Hashable { case fn, env, account }
    public var limit: Int
    public var key: String?
    public var scope: Scope
    /// A run-level limit (`concurrency.fn`): a run takes its slot when it starts and keeps it,
    /// sleeping and waiting included, until it ends.
    public var wholeRun = false

    /// A request limit, or with `wholeRun` a run-level one: one function's runs, scope `fn`
    /// only, a limit above 0.
    init(_ reader: ConfigReader, wholeRun: Bool = false) throws(FunctionConfigError) {
        limit = try reader.requiredInt("limit", range: (wholeRun ? 1 : 0)...100_000)
        key = try reader.optionalExpression("key")
        let scopeText = try reader.optionalString("scope") ?? "fn"
        if wholeRun, scopeText != "fn" { throw reader.error("scope", "must be fn for a run-level limit, got \"\(scopeText)\"") }
        guard let scope = Scope(rawValue: scopeText) else {
            throw reader.error("scope", "must be fn, env or account, got \"\(scopeText)\"")
        }
        // As in Inngest: a limit shared across functions needs a key to share it by.
        if scope != .fn, key == nil { throw reader.error("key", "is required when scope is \(scopeText)") }
        self.scope = scope
        self.wholeRun = wholeRun
    }

    /// A number, an object, an array of objects, or `{fn: [...], step: [...]}` (`fn` holds at
    /// most one run-level limit, `step` the request limits).
    static func parse(_ reader: ConfigReader, _ value: JSONValue?) throws(FunctionConfigError) -> [ConcurrencyLimit] {
        var limits: [ConcurrencyLimit] = []
        switch value {
        case nil, .null?:
            return []
        case .number(let number)?:
            guard let limit = number.int64Value, (0...100_000).contains(limit) else {
                throw reader.error("concurrency", "must be an integer from 0 to 100000, got \(number)")
            }
            limits = [ConcurrencyLimit(limit: Int(limit))]
        case .object(let object)? where object["limit"] == nil && (object["fn"] != nil || object["step"] != nil):
            for part in ["fn", "step"] {
                guard let value = object[part], value != .null else { continue }
                guard case .array(let elements) = value else { throw reader.error("concurrency.\(part)", "must be an array of objects") }
                if part == "fn", elements.count > 1 {
                    throw reader.error("concurrency.fn", "must have at most 1 run-level limit, got \(elements.count)")
                }
                for (index, element) in elements.enumerated() {
                    limits.append(try ConcurrencyLimit(reader.object(element, at: "concurrency.\(part)[\(index)]"), wholeRun: part == "fn"))
                }
            }
        case .object?:
            limits = [try ConcurrencyLimit(reader.object(value!, at: "concurrency"))]
        case .array(let elements)?:
            for (index, element) in elements.enumerated() {
                limits.append(try ConcurrencyLimit(reader.object(element, at: "concurrency[\(index)]")))
            }
        default:
            throw reader.error("concurrency", "must be a number, an object or an array of objects")
        }
        let requestLimits = limits.filter { !$0.wholeRun }.count
        guard requestLimits <= FunctionConfig.maximumConcurrencyLimits else {
            throw reader.error("concurrency", "must have at most \(FunctionConfig.maximumConcurrencyLimits) limits, got \(requestLimits)")
        }
        return limits
    }

    init(limit: Int) {
        self.limit = limit
        self.key = nil
        self.scope = .fn
    }
}

/// At most `limit` runs start per `period` (GCRA), with `burst` extra, per key value.
public struct Throttle: Sendable, Hashable {
    public var limit: Int
    public var period: ConfigDuration
    public var burst: Int
    public var key: String?

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        // As in Inngest: a limit of 0 is 1, and no burst is none (the Python SDK sends 1).
        limit = max(1, try reader.requiredInt("limit", range: 0...1_000_000))
        period = try reader.requiredDuration("period", within: 1_000...(7 * 86_400_000))
        burst = try reader.optionalInt("burst", range: 0...1_000_000) ?? 0
        key = try reader.optionalExpression("key")
    }
}

/// At most `limit` runs per `period` per key value; the rest are skipped.
public struct RateLimit: Sendable, Hashable {
    public var limit: Int
    public var period: ConfigDuration
    public var key: String?

    init(limit: Int, period: ConfigDuration, key: String?) {
        self.limit = limit
        self.period = period
        self.key = key
    }

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        limit = try reader.requiredInt("limit", range: 1...1_000_000)
        period = try reader.requiredDuration("period", within: 1_000...86_400_000)
        key = try reader.optionalExpression("key")
    }
}

/// Waits `period` after the last event per key before starting, at most `timeout` in all.
public struct Debounce: Sendable, Hashable {
    public var period: ConfigDuration
    public var key: String?
    public var timeout: ConfigDuration?

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        period = try reader.requiredDuration("period", within: 1_000...(7 * 86_400_000))
        key = try reader.optionalExpression("key")
        timeout = try reader.optionalDuration("timeout", within: 1_000...(7 * 86_400_000))
    }
}

/// Starts one run per batch of up to `maxSize` events, or after `timeout`.
public struct BatchEvents: Sendable, Hashable {
    public var maxSize: Int
    public var timeout: ConfigDuration
    public var key: String?
    /// A boolean expression an event must satisfy to be batched.
    public var condition: String?

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        maxSize = try reader.requiredInt("maxSize", range: 2...10_000)
        timeout = try reader.requiredDuration("timeout", within: 1_000...(7 * 86_400_000))
        key = try reader.optionalExpression("key")
        condition = try reader.optionalExpression("if")
    }
}

/// An event that cancels a run: name, an optional `if` (`event` = the run's trigger, `async`
/// = the candidate), and how long after the run starts it applies (default one year).
public struct CancelOn: Sendable, Hashable {
    public var event: String
    public var condition: String?
    public var timeout: ConfigDuration?

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        event = try reader.requiredString("event", maximumLength: EventValidation.maximumNameLength)
        condition = try reader.optionalExpression("if")
        timeout = try reader.optionalDuration("timeout", within: 1_000...(366 * 86_400_000))
    }
}

/// `run` yields the seconds (−600…600) a run is moved ahead in its queue.
public struct Priority: Sendable, Hashable {
    public var run: String?

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        run = try reader.optionalExpression("run")
    }
}

/// How long a run may wait to start, and how long it may take in all.
public struct FunctionTimeouts: Sendable, Hashable {
    public var start: ConfigDuration?
    public var finish: ConfigDuration?

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        start = try reader.optionalDuration("start", within: 1...(366 * 86_400_000))
        finish = try reader.optionalDuration("finish", within: 1...(366 * 86_400_000))
    }
}

/// At most one run per key value at a time: a new one is skipped, or cancels the old one.
public struct Singleton: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable { case skip, cancel }
    public var key: String?
    public var mode: Mode

    init(_ reader: ConfigReader) throws(FunctionConfigError) {
        key = try reader.optionalExpression("key")
        let modeText = try reader.optionalString("mode") ?? "skip"
        guard let mode = Mode(rawValue: modeText) else {
            throw reader.error("mode", "must be skip or cancel, got \"\(modeText)\"")
        }
        self.mode = mode
    }
}

/// A function config that breaks a rule: which function, which field, which rule.
public struct FunctionConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The function's slug, when it could be read.
    public var functionID: String?
    /// The path of the field inside the function (`triggers[1].cron`); empty for the whole
    /// object.
    public var field: String
    /// The rule, with the value that broke it.
    public var rule: String

    public var description: String {
        let subject = field.isEmpty ? "" : "\(field): "
        guard let functionID else { return subject + rule }
        return "function \"\(functionID)\": \(subject)\(rule)"
    }
}

/// Reads typed fields of one object in a function config, naming the path in every error.
struct ConfigReader {
    let object: JSONObject
    let path: String
    var functionID: String?

    func fieldPath(_ field: String) -> String {
        if path.isEmpty { return field }
        return field.isEmpty ? path : "\(path).\(field)"
    }

    func error(_ field: String, _ rule: String) -> FunctionConfigError {
        FunctionConfigError(functionID: functionID, field: fieldPath(field), rule: rule)
    }

    func nested(_ object: JSONObject, at field: String) -> ConfigReader {
        ConfigReader(object: object, path: fieldPath(field), functionID: functionID)
    }

    /// A reader for `value`, which must be an object; `at` is its path from the function.
    func object(_ value: JSONValue, at absolutePath: String) throws(FunctionConfigError) -> ConfigReader {
        guard case .object(let object) = value else {
            throw FunctionConfigError(functionID: functionID, field: absolutePath, rule: "must be an object, got \(value.shortRendering)")
        }
        return ConfigReader(object: object, path: absolutePath, functionID: functionID)
    }

    /// The object at `field`, read by `build`, or nil when the field is absent or null.
    func section<T>(_ field: String, _ build: (ConfigReader) throws(FunctionConfigError) -> T) throws(FunctionConfigError) -> T? {
        guard let object = try optionalObject(field) else { return nil }
        return try build(nested(object, at: field))
    }

    func requiredString(_ field: String, maximumLength: Int) throws(FunctionConfigError) -> String {
        guard let value = try optionalString(field), !value.isEmpty else { throw error(field, "is required and must be a non-empty string") }
        guard value.utf8.count <= maximumLength else {
            throw error(field, "must be at most \(maximumLength) bytes, got \(value.utf8.count)")
        }
        return value
    }

    func optionalString(_ field: String) throws(FunctionConfigError) -> String? {
        switch object[field] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        case let other?: throw error(field, "must be a string, got \(other.shortRendering)")
        }
    }

    func optionalObject(_ field: String) throws(FunctionConfigError) -> JSONObject? {
        switch object[field] {
        case nil, .null?: return nil
        case .object(let value)?: return value
        case let other?: throw error(field, "must be an object, got \(other.shortRendering)")
        }
    }

    func array(_ field: String, required: Bool, range: ClosedRange<Int>) throws(FunctionConfigError) -> [JSONValue] {
        let elements: [JSONValue]
        switch object[field] {
        case nil, .null?:
            guard !required else { throw error(field, "is required") }
            elements = []
        case .array(let value)?: elements = value
        case let other?: throw error(field, "must be an array, got \(other.shortRendering)")
        }
        guard range.contains(elements.count) else {
            throw error(field, "must have \(range.lowerBound) to \(range.upperBound) entries, got \(elements.count)")
        }
        return elements
    }

    func optionalInt(_ field: String, range: ClosedRange<Int>) throws(FunctionConfigError) -> Int? {
        switch object[field] {
        case nil, .null?: return nil
        case .number(let number)?:
            guard let value = number.int64Value, range.contains(Int(value)) else {
                throw error(field, "must be an integer from \(range.lowerBound) to \(range.upperBound), got \(number)")
            }
            return Int(value)
        case let other?: throw error(field, "must be an integer, got \(other.shortRendering)")
        }
    }

    func requiredInt(_ field: String, range: ClosedRange<Int>) throws(FunctionConfigError) -> Int {
        guard let value = try optionalInt(field, range: range) else { throw error(field, "is required") }
        return value
    }

    /// A duration string; `within` bounds it in milliseconds.
    func optionalDuration(_ field: String, within bounds: ClosedRange<Int64>?) throws(FunctionConfigError) -> ConfigDuration? {
        guard let text = try optionalString(field) else { return nil }
        let duration: ConfigDuration
        do { duration = try ConfigDuration(parsing: text) } catch { throw self.error(field, error.rule) }
        if let bounds, !bounds.contains(duration.milliseconds) {
            throw error(field, "must be from \(ConfigDuration(milliseconds: bounds.lowerBound)) to \(ConfigDuration(milliseconds: bounds.upperBound)), got \"\(text)\"")
        }
        return duration
    }

    func requiredDuration(_ field: String, within bounds: ClosedRange<Int64>) throws(FunctionConfigError) -> ConfigDuration {
        guard let duration = try optionalDuration(field, within: bounds) else { throw error(field, "is required") }
        return duration
    }

    /// An expression, checked by compiling it.
    func optionalExpression(_ field: String) throws(FunctionConfigError) -> String? {
        guard let source = try optionalString(field), !source.isEmpty else { return nil }
        do { _ = try Expression(compiling: source) } catch { throw self.error(field, "does not compile: \(error)") }
        return source
    }
}
