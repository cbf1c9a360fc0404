public import CairnCore
public import Foundation

/// Where apps and their functions are recorded: Postgres in production.
///
/// A sync replaces an app's function set in one transaction: new functions are added at
/// version 1, changed ones get the next version (same id, so runs keep pointing at them),
/// unchanged ones are left alone, and functions missing from the sync are archived. Runs are
/// never touched: every version's config is kept, and a run uses the one it started with.
public protocol AppRegistry: Sendable {
    /// Records `registration` as the app's current state.
    ///
    /// - Throws: `AppSyncConflict` when a function slug is live in another app; then nothing
    ///   was written.
    func sync(_ registration: AppRegistration, at: Date) async throws -> AppSyncOutcome

    /// Every app, by name.
    func apps() async throws -> [AppRecord]

    /// The live functions of the app named `appName`, by slug; nil when there is no such app.
    func functions(appName: String) async throws -> [FunctionRecord]?

    /// Every live function of every app, by slug: what the scheduler matches events against.
    func liveFunctions() async throws -> [FunctionRecord]

    /// The version of every live function, by id: a cheap way to see whether `liveFunctions()`
    /// would return anything new (a sync that changes a function bumps its version).
    func liveFunctionVersions() async throws -> [UUID: FunctionRevision]

    /// Pauses (`at` a date) or resumes (`at` nil) the live function `id`; returns when it was
    /// paused before, nil when it was running (or is not live).
    func setPaused(functionID: UUID, at: Date?) async throws -> Date?

    /// The config of version `version` of function `id`, archived or not; nil when unknown.
    func functionVersion(id: UUID, version: Int) async throws -> FunctionConfig?
}

/// The result of recording a sync.
public struct AppSyncOutcome: Sendable, Hashable {
    /// The app's stable id.
    public var appID: UUID
    /// This sync's id.
    public var syncID: UUID
    /// False when the app's checksum was unchanged (nothing was written but the sync time).
    public var modified: Bool
    /// Slugs added, changed and archived by this sync.
    public var added: [String]
    public var changed: [String]
    public var archived: [String]

    public init(appID: UUID, syncID: UUID, modified: Bool, added: [String], changed: [String], archived: [String]) {
        self.appID = appID
        self.syncID = syncID
        self.modified = modified
        self.added = added
        self.changed = changed
        self.archived = archived
    }
}

/// A sync that would take a function slug another app holds.
public struct AppSyncConflict: Error, Sendable, Hashable, CustomStringConvertible {
    public var slug: String
    public var otherApp: String

    public init(slug: String, otherApp: String) {
        self.slug = slug
        self.otherApp = otherApp
    }

    public var description: String {
        "function \"\(slug)\": the id is already used by app \"\(otherApp)\""
    }
}

/// A recorded app.
public struct AppRecord: Sendable, Hashable {
    public var id: UUID
    public var name: String
    public var url: String
    public var sdkLanguage: String
    public var sdkVersion: String
    public var framework: String
    public var checksum: String
    public var createdAt: Date
    public var syncedAt: Date
    public var functionCount: Int

    public init(
        id: UUID, name: String, url: String, sdkLanguage: String, sdkVersion: String, framework: String,
        checksum: String, createdAt: Date, syncedAt: Date, functionCount: Int
    ) {
        self.id = id
        self.name = name
        self.url = url
        self.sdkLanguage = sdkLanguage
        self.sdkVersion = sdkVersion
        self.framework = framework
        self.checksum = checksum
        self.createdAt = createdAt
        self.syncedAt = syncedAt
        self.functionCount = functionCount
    }
}

/// A recorded function at its current version.
/// What tells a function's catalog entry is stale: its version, and whether it is paused.
public struct FunctionRevision: Sendable, Hashable {
    public var version: Int
    public var paused: Bool

    public init(version: Int, paused: Bool) {
        self.version = version
        self.paused = paused
    }
}

public struct FunctionRecord: Sendable, Hashable {
    /// Stable across versions.
    public var id: UUID
    public var appID: UUID
    public var appName: String
    public var version: Int
    public var config: FunctionConfig
    public var createdAt: Date
    public var updatedAt: Date
    /// When the function was paused; nil while it runs (docs/operations.md).
    public var pausedAt: Date?

    public init(id: UUID, appID: UUID, appName: String, version: Int, config: FunctionConfig, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.appID = appID
        self.appName = appName
        self.version = version
        self.config = config
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The function's slug.
    public var slug: String { config.id }
}

/// How the server reaches an app's serve endpoint over HTTP.
public protocol SDKTransport: Sendable {
    /// Sends `request` and returns the reply, whatever its status.
    ///
    /// - Throws: when no reply arrived (connect failure, timeout); `SDKCallNotDelivered` when
    ///   the request certainly reached no app.
    func send(_ request: SDKRequest) async throws -> SDKReply
}

/// A call that reached no app (no connect worker was there to take it): the run tries the same
/// attempt again later rather than spending one of its retries.
public struct SDKCallNotDelivered: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// A request to an app.
public struct SDKRequest: Sendable, Hashable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var timeout: Duration

    public init(method: String, url: String, headers: [(String, String)], body: [UInt8], timeout: Duration) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    public static func == (lhs: SDKRequest, rhs: SDKRequest) -> Bool {
        lhs.method == rhs.method && lhs.url == rhs.url && lhs.body == rhs.body && lhs.timeout == rhs.timeout
            && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(url)
        hasher.combine(body)
    }
}

/// An app's reply.
public struct SDKReply: Sendable {
    public var status: Int
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// Whether the channel the reply came over already proved the app's identity (a connect
    /// worker's authenticated session), so the reply needs no signature.
    public var authenticatedByChannel = false

    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
