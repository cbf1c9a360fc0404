public import CairnCore
public import CairnEngine
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Where and how run traces are exported: OTLP over HTTP, JSON-encoded, configured with the
/// OpenTelemetry exporter variables (docs/operations.md, "Traces").
public struct OTLPSettings: Sendable, Equatable {
    /// Where spans are POSTed: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
    public var tracesURL: String
    /// Sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`), e.g. an API key.
    public var headers: [String: String] = [:]
    /// `OTEL_SERVICE_NAME`; nil names the service after the process's roles.
    public var serviceName: String?
    /// `OTEL_RESOURCE_ATTRIBUTES`, added to every batch's resource.
    public var resourceAttributes: [String: String] = [:]
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`: the longest an export may take.
    public var timeout: Duration = .seconds(10)
    /// `OTEL_BSP_SCHEDULE_DELAY`: how long spans wait to be sent with others.
    public var scheduleDelay: Duration = .seconds(5)
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: spans held at most; beyond it new spans are dropped (and
    /// counted in `cairn_trace_spans_dropped_total`), so a slow collector never slows runs.
    public var maximumQueueSize = 8_192
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per request at most.
    public var maximumBatchSize = 512

    public init(tracesURL: String) {
        self.tracesURL = tracesURL
    }
}

/// Sends finished spans to an OTLP/HTTP endpoint in batches, and forwards the SDK's own spans
/// (`POST /v1/traces/userland`) to the same endpoint unchanged.
///
/// `export` only appends to a bounded queue; the service sends what is queued every
/// `scheduleDelay`, or sooner once a batch is full, and what is left when the process shuts
/// down. A batch the endpoint refuses or that times out is logged and dropped: traces are a
/// view of the runs, whose record is Postgres.
public final class OTLPTraceExporter: SpanSink, Service {
    let settings: OTLPSettings
    let resource: JSONValue
    let transport: any SDKTransport
    let logger: Logger
    private let queue = Mutex(Queue())
    private let (doorbell, ring) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    /// Spans dropped because the queue was full, or their batch could not be sent.
    private let dropped = Atomic<Int>(0)
    private let onDrop: @Sendable (Int) -> Void

    struct Queue {
        var spans: [TraceSpan] = []
    }

    /// - Parameters:
    ///   - resource: the resource attributes of this process (`service.name`, `service.version`,
    ///     …); `settings.resourceAttributes` are added to them.
    ///   - onDrop: told how many spans were dropped each time some are.
    public init(
        settings: OTLPSettings, resource: [String: String], transport: any SDKTransport = HTTPSDKTransport(), logger: Logger,
        onDrop: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.settings = settings
        let attributes = resource.merging(settings.resourceAttributes) { $1 }
        self.resource = .object(["attributes": .array(attributes.sorted { $0.key < $1.key }.map { Self.attribute($0.key, .string($0.value)) })])
        self.transport = transport
        self.logger = logger
        self.onDrop = onDrop
    }

    public func export(_ spans: [TraceSpan]) {
        let (lost, full) = queue.withLock { queue -> (Int, Bool) in
            let room = max(0, settings.maximumQueueSize - queue.spans.count)
            queue.spans.append(contentsOf: spans.prefix(room))
            return (spans.count - min(room, spans.count), queue.spans.count >= settings.maximumBatchSize)
        }
        if lost > 0 { drop(lost) }
        if full { ring.yield() }
    }

    func drop(_ count: Int) {
        dropped.add(count, ordering: .relaxed)
        onDrop(count)
    }

    /// Spans dropped so far.
    public var droppedSpans: Int { dropped.load(ordering: .relaxed) }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                // The bell rings when a batch is full, and every `scheduleDelay` regardless.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.settings.scheduleDelay)
                        self.ring.yield()
                    }
                }
                for await _ in self.doorbell { await self.flush() }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.ring.finish()
        }
        // Shutting down: send what is left.
        await flush()
    }

    /// Sends every queued span, a batch at a time.
    public func flush() async {
        while true {
            let batch = queue.withLock { queue -> [TraceSpan] in
                let count = min(queue.spans.count, settings.maximumBatchSize)
                defer { queue.spans.removeFirst(count) }
                return Array(queue.spans.prefix(count))
            }
            if batch.isEmpty { return }
            await send(body: Self.encode(batch, resource: resource), contentType: "application/json", spans: batch.count)
        }
    }

    /// Forwards an OTLP export request from an SDK (`POST /v1/traces/userland`) as it came.
    public func forward(body: [UInt8], contentType: String) async -> Bool {
        await send(body: body, contentType: contentType, spans: 0)
    }

    @discardableResult
    func send(body: [UInt8], contentType: String, spans: Int) async -> Bool {
        var headers = [("content-type", contentType)]
        headers += settings.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let request = SDKRequest(method: "POST", url: settings.tracesURL, headers: headers, body: body, timeout: settings.timeout)
        do {
            let reply = try await transport.send(request)
            if (200..<300).contains(reply.status) { return true }
            logger.warning(
                "the trace endpoint refused spans", metadata: ["status": "\(reply.status)", "body": "\(String(decoding: reply.body.prefix(300), as: UTF8.self))"])
        } catch {
            logger.warning("exporting spans failed", metadata: ["endpoint": "\(URLRedaction.redact(settings.tracesURL))", "error": "\(error)"])
        }
        if spans > 0 { drop(spans) }
        return false
    }

    // MARK: Encoding (OTLP/JSON: ids in hex, 64-bit integers as strings)

    static func encode(_ spans: [TraceSpan], resource: JSONValue) -> [UInt8] {
        let encoded: [JSONValue] = spans.map { span in
            var members: [(String, JSONValue)] = [
                ("traceId", .string(RunTracing.hex(span.traceID, digits: 32))), ("spanId", .string(RunTracing.hex(span.spanID, digits: 16))),
            ]
            if let parent = span.parentID { members.append(("parentSpanId", .string(RunTracing.hex(parent, digits: 16)))) }
            members += [
                ("name", .string(span.name)), ("kind", .number(JSONNumber(span.kind.rawValue))),
                ("startTimeUnixNano", .string(nanoseconds(span.start))), ("endTimeUnixNano", .string(nanoseconds(span.end))),
                ("attributes", .array(span.attributes.map { attribute($0.key, $0.value) })),
            ]
            if let error = span.error {
                members.append(("status", .object(["code": 2, "message": .string(error)])))
            } else {
                members.append(("status", .object(["code": 1])))
            }
            return .object(JSONObject(members: members))
        }
        let request: JSONValue = .object([
            "resourceSpans": .array([
                .object([
                    "resource": resource,
                    "scopeSpans": .array([.object(["scope": .object(["name": "cairn"]), "spans": .array(encoded)])]),
                ])
            ])
        ])
        return request.serialized()
    }

    static func attribute(_ key: String, _ value: TraceSpan.Value) -> JSONValue {
        let encoded: JSONValue
        switch value {
        case .string(let text): encoded = .object(["stringValue": .string(text)])
        case .int(let number): encoded = .object(["intValue": .string(String(number))])
        case .bool(let flag): encoded = .object(["boolValue": .bool(flag)])
        }
        return .object(["key": .string(key), "value": encoded])
    }

    static func nanoseconds(_ date: Date) -> String {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        return String(Int64(micros) * 1_000)
    }
}
