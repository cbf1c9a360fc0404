import CairnCore
import CairnEngine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Server-sent events that keep an open page current without a reload (docs/dashboard.md#live-updates):
///
/// - `/live/runs?<the list's filters>&after=<newest run shown>` sends `event: runs` with
///   `{"new": n}` whenever the number of newer runs matching the filters changes;
/// - `/live/runs/{id}?steps=<n>&status=<s>` sends `event: run` with `{"changed": true}` once the
///   run has recorded another step or changed status, then ends.
///
/// The server checks Postgres once a second per open stream, with one indexed query. A stream
/// lasts at most `streamLifetime`, then ends; the browser's `EventSource` reconnects by itself
/// (`retry:`), so no connection outlives a deploy by long.
struct LiveUpdates: Sendable {
    let sources: DashboardSources

    static let interval: Duration = .seconds(1)
    static let streamLifetime: Duration = .seconds(55)
    /// New runs are counted up to this; the pill says "100+" beyond.
    static let countLimit = 100

    func runs(_ request: DashboardRequest) -> Response {
        let sources = self.sources
        let after = request["after"].flatMap(ULID.init)
        return Self.stream { send in
            let query = try await DashboardPages.runQuery(request, operations: sources.operations)
            // With nothing shown yet, runs created from now on are new.
            let floor = after ?? ULID(milliseconds: UInt64(sources.clock.now.unixMilliseconds), entropy: [UInt8](repeating: 0, count: 10))
            var reported = 0
            while true {
                let newer = try await sources.runs.runs(query.filter, after: floor, ascending: true, limit: Self.countLimit)
                if newer.count != reported {
                    reported = newer.count
                    try await send("runs", #"{"new":\#(newer.count)}"#)
                }
                try await Task.sleep(for: Self.interval)
            }
        }
    }

    func run(_ request: DashboardRequest) -> Response {
        let sources = self.sources
        let id = ULID(request.parameter("id"))
        let steps = request["steps"].flatMap(Int.init) ?? 0
        let status = request["status"] ?? ""
        return Self.stream { send in
            guard let id else { return }
            while true {
                guard let run = try await sources.runs.run(id) else { return }
                if run.steps.count != steps || run.status != status {
                    try await send("run", #"{"changed":true}"#)
                    return
                }
                try await Task.sleep(for: Self.interval)
            }
        }
    }

    /// An event stream fed by `produce` until it returns, throws, or `streamLifetime` passes.
    static func stream(_ produce: @escaping @Sendable (_ send: @escaping @Sendable (String, String) async throws -> Void) async throws -> Void) -> Response {
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            let (events, continuation) = AsyncStream<String>.makeStream()
            let producer = Task {
                try? await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await produce { name, data in continuation.yield("event: \(name)\ndata: \(data)\n\n") } }
                    group.addTask { try await Task.sleep(for: streamLifetime) }
                    try await group.next()
                    group.cancelAll()
                }
                continuation.finish()
            }
            defer { producer.cancel() }
            for await event in events { try await writer.write(ByteBuffer(string: event)) }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            // `X-Accel-Buffering: no`: a proxy such as the nginx edge in deploy/ passes each
            // event on at once instead of buffering the stream.
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"], body: body)
    }
}
