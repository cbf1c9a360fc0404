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
    /// The resource, encoded once.
    let resource: [UInt8]
    let transport: any SDKTransport
    let logger: Logger
    /// Spans waiting to be sent, oldest first.
    private let queue = Mutex<[TraceSpan]>([])
    /// Rung with `false` when a batch is full (send full batches), `true` every
    /// `scheduleDelay` (send everything).
    private let (doorbell, ring) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(1))
    /// Spans dropped because the queue was full, or their batch could not be sent.
    private let dropped = Atomic<Int>(0)
    private let onDrop: @Sendable (Int) -> Void

    /// - Parameters:
    ///   - resource: the resource attributes of this process (`service.name`, `service.version`,
    ///     …); `settings.resourceAttributes` are added to them.
    ///   - onDrop: told how many spans were dropped each time some are.
    public init(
        settings: OTLPSettings, resource: [String: String], transport: any SDKTransport = HTTPSDKTransport(), logger: Logger,
        onDrop: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.settings = settings
        self.resource = Self.encodeResource(resource.merging(settings.resourceAttributes) { $1 })
        self.transport = transport
        self.logger = logger
        self.onDrop = onDrop
    }

    public func export(_ spans: [TraceSpan]) {
        let (lost, full) = queue.withLock { queue -> (Int, Bool) in
            let room = max(0, settings.maximumQueueSize - queue.count)
            queue.append(contentsOf: spans.prefix(room))
            return (spans.count - min(room, spans.count), queue.count >= settings.maximumBatchSize)
        }
        if lost > 0 { drop(lost) }
        if full { ring.yield(false) }
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
                        self.ring.yield(true)
                    }
                }
                for await everything in self.doorbell { await self.flush(all: everything) }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.ring.finish()
        }
        // Shutting down: send what is left.
        await flush()
    }

    /// Sends the queued spans a batch at a time: all of them, or (`all` false) only full
    /// batches, so that spans arriving while one is sent wait for the next rather than go in
    /// a request of their own.
    public func flush(all: Bool = true) async {
        while true {
            let batch = queue.withLock { queue -> [TraceSpan] in
                if !all && queue.count < settings.maximumBatchSize { return [] }
                let count = min(queue.count, settings.maximumBatchSize)
                defer { queue.removeFirst(count) }
                return Array(queue.prefix(count))
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

    /// An `ExportTraceServiceRequest` holding `spans`, written straight to bytes rather than
    /// through a `JSONValue` tree, which allocates for every member of every span.
    static func encode(_ spans: [TraceSpan], resource: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(resource.count + 128 + spans.count * 512)
        out += #"{"resourceSpans":[{"resource":"#.utf8
        out += resource
        out += #","scopeSpans":[{"scope":{"name":"cairn"},"spans":["#.utf8
        for (index, span) in spans.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += #"{"traceId":""#.utf8
            RunTracing.writeHex(span.traceID, digits: 32, to: &out)
            out += #"","spanId":""#.utf8
            RunTracing.writeHex(span.spanID, digits: 16, to: &out)
            out.append(UInt8(ascii: "\""))
            if let parent = span.parentID {
                out += #","parentSpanId":""#.utf8
                RunTracing.writeHex(parent, digits: 16, to: &out)
                out.append(UInt8(ascii: "\""))
            }
            out += #","name":"#.utf8
            JSONValue.writeString(span.name, to: &out)
            out += #","kind":"#.utf8
            out += String(span.kind.rawValue).utf8
            out += #","startTimeUnixNano":""#.utf8
            out += nanoseconds(span.start).utf8
            out += #"","endTimeUnixNano":""#.utf8
            out += nanoseconds(span.end).utf8
            out += #"","attributes":["#.utf8
            for (offset, attribute) in span.attributes.enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                writeAttribute(attribute.key, attribute.value, to: &out)
            }
            if let error = span.error {
                out += #"],"status":{"code":2,"message":"#.utf8
                JSONValue.writeString(error, to: &out)
                out += "}}".utf8
            } else {
                out += #"],"status":{"code":1}}"#.utf8
            }
        }
        out += "]}]}]}".utf8
        return out
    }

    /// A resource of string attributes, encoded once.
    static func encodeResource(_ attributes: [String: String]) -> [UInt8] {
        var out: [UInt8] = Array(#"{"attributes":["#.utf8)
        for (offset, (key, value)) in attributes.sorted(by: { $0.key < $1.key }).enumerated() {
            if offset > 0 { out.append(UInt8(ascii: ",")) }
            writeAttribute(key, .string(value), to: &out)
        }
        out += "]}".utf8
        return out
    }

    static func writeAttribute(_ key: String, _ value: TraceSpan.Value, to out: inout [UInt8]) {
        out += #"{"key":"#.utf8
        JSONValue.writeString(key, to: &out)
        switch value {
        case .string(let text):
            out += #","value":{"stringValue":"#.utf8
            JSONValue.writeString(text, to: &out)
            out += "}}".utf8
        case .int(let number):
            out += #","value":{"intValue":""#.utf8
            out += String(number).utf8
            out += #""}}"#.utf8
        case .bool(let flag):
            out += #","value":{"boolValue":"#.utf8
            out += (flag ? "true" : "false").utf8
            out += "}}".utf8
        }
    }

    static func nanoseconds(_ date: Date) -> String {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        return String(Int64(micros) * 1_000)
    }
}
