public import CairnCore
public import CairnEngine
public import Foundation
import Synchronization

/// An `AppRegistry` in memory with the Postgres registry's rules (versions, archiving,
/// unchanged checksums, slug conflicts), for engine and route tests.
public final class InMemoryAppRegistry: AppRegistry {
    private struct StoredFunction {
        var record: FunctionRecord
        var archived: Bool
    }

    private struct State {
        var apps: [String: AppRecord] = [:]
        var functions: [StoredFunction] = []
        var versions: [UUID: [Int: FunctionConfig]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func sync(_ registration: AppRegistration, at now: Date) async throws -> AppSyncOutcome {
        try state.withLock { state in
            let existing = state.apps[registration.appName]
            let appID = existing?.id ?? UUID()
            let slugs = Set(registration.functions.map(\.id))
            if let other = state.functions.first(where: { !$0.archived && slugs.contains($0.record.slug) && $0.record.appID != appID }) {
                throw AppSyncConflict(slug: other.record.slug, otherApp: other.record.appName)
            }
            var app = AppRecord(
                id: appID, name: registration.appName, url: registration.url, sdkLanguage: registration.sdkLanguage,
                sdkVersion: registration.sdkVersion, framework: registration.framework, checksum: registration.checksum,
                createdAt: existing?.createdAt ?? now, syncedAt: now, functionCount: 0)
            defer {
                app.functionCount = state.functions.count { !$0.archived && $0.record.appID == appID }
                state.apps[registration.appName] = app
            }
            if existing?.checksum == registration.checksum {
                return AppSyncOutcome(appID: appID, syncID: UUID(), modified: false, added: [], changed: [], archived: [])
            }
            var added: [String] = []
            var changed: [String] = []
            for function in registration.functions {
                if let index = state.functions.firstIndex(where: { !$0.archived && $0.record.appID == appID && $0.record.slug == function.id }) {
                    guard state.functions[index].record.config.json != function.json else { continue }
                    state.functions[index].record.config = function
                    state.functions[index].record.version += 1
                    state.functions[index].record.updatedAt = now
                    state.versions[state.functions[index].record.id, default: [:]][state.functions[index].record.version] = function
                    changed.append(function.id)
                } else {
                    let id = UUID()
                    state.functions.append(StoredFunction(
                        record: FunctionRecord(
                            id: id, appID: appID, appName: registration.appName, version: 1, config: function, createdAt: now,
                            updatedAt: now),
                        archived: false))
                    state.versions[id] = [1: function]
                    added.append(function.id)
                }
            }
            var archived: [String] = []
            for index in state.functions.indices
            where !state.functions[index].archived && state.functions[index].record.appID == appID
                && !slugs.contains(state.functions[index].record.slug)
            {
                state.functions[index].archived = true
                archived.append(state.functions[index].record.slug)
            }
            return AppSyncOutcome(appID: appID, syncID: UUID(), modified: true, added: added, changed: changed, archived: archived.sorted())
        }
    }

    public func apps() async throws -> [AppRecord] {
        state.withLock { $0.apps.values.sorted { $0.name < $1.name } }
    }

    public func functions(appName: String) async throws -> [FunctionRecord]? {
        state.withLock { state in
            guard state.apps[appName] != nil else { return nil }
            return state.functions.filter { !$0.archived && $0.record.appName == appName }.map(\.record).sorted { $0.slug < $1.slug }
        }
    }

    public func liveFunctions() async throws -> [FunctionRecord] {
        state.withLock { $0.functions.filter { !$0.archived }.map(\.record).sorted { $0.slug < $1.slug } }
    }

    public func liveFunctionVersions() async throws -> [UUID: FunctionRevision] {
        Dictionary(uniqueKeysWithValues: try await liveFunctions().map { ($0.id, FunctionRevision(version: $0.version, paused: $0.pausedAt != nil)) })
    }

    public func setPaused(functionID: UUID, at: Date?) async throws -> Date? {
        state.withLock { state in
            guard let index = state.functions.firstIndex(where: { $0.record.id == functionID && !$0.archived }) else { return nil }
            let before = state.functions[index].record.pausedAt
            state.functions[index].record.pausedAt = at.map { before ?? $0 }
            return before
        }
    }

    public func functionVersion(id: UUID, version: Int) async throws -> FunctionConfig? {
        storedVersion(id: id, version: version)
    }

    /// `functionVersion(id:version:)` without suspending, for the in-memory run store.
    func storedVersion(id: UUID, version: Int) -> FunctionConfig? {
        state.withLock { $0.versions[id]?[version] }
    }

    /// The live version of function `id`, if it is live.
    func liveVersion(id: UUID) -> Int? {
        state.withLock { $0.functions.first { $0.record.id == id && !$0.archived }?.record.version }
    }

    /// The live config of function `id`, if it is live.
    func liveConfig(id: UUID) -> FunctionConfig? {
        state.withLock { $0.functions.first { $0.record.id == id && !$0.archived }?.record.config }
    }
}

/// An `SDKTransport` that answers with a handler the test provides and records what was sent.
public final class ScriptedSDKTransport: SDKTransport {
    private let handler: @Sendable (SDKRequest) async throws -> SDKReply
    private let sent = Mutex<[SDKRequest]>([])

    public init(_ handler: @escaping @Sendable (SDKRequest) async throws -> SDKReply) {
        self.handler = handler
    }

    /// Every request sent so far.
    public var requests: [SDKRequest] { sent.withLock { $0 } }

    public func send(_ request: SDKRequest) async throws -> SDKReply {
        sent.withLock { $0.append(request) }
        return try await handler(request)
    }
}
