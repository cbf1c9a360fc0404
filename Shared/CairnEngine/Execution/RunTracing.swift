public import CairnCore
public import Foundation
import Synchronization

/// A finished span, ready to export (docs/operations.md, "Traces").
public struct TraceSpan: Sendable, Equatable {
    /// The OTLP span kinds Cairn uses.
    public enum Kind: Int, Sendable {
        case `internal` = 1
        case server = 2
        case client = 3
    }

    /// A typed attribute value.
    public enum Value: Sendable, Hashable {
        case string(String)
        case int(Int64)
        case bool(Bool)
    }

    public var traceID: UInt128
    public var spanID: UInt64
    /// The parent span, or nil for a trace's root.
    public var parentID: UInt64?
    public var name: String
    public var kind: Kind
    public var start: Date
    public var end: Date
    /// Attributes in the order written; keys are unique.
    public var attributes: [Attribute]
    /// The error that ended the span's work, or nil when it succeeded.
    public var error: String?

    public struct Attribute: Sendable, Hashable {
        public var key: String
        public var value: Value

        public init(_ key: String, _ value: Value) {
            self.key = key
            self.value = value
        }
    }

    public init(
        traceID: UInt128, spanID: UInt64, parentID: UInt64?, name: String, kind: Kind = .internal, start: Date, end: Date,
        attributes: [Attribute] = [], error: String? = nil
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentID = parentID
        self.name = name
        self.kind = kind
        self.start = start
        self.end = max(start, end)
        self.attributes = attributes
        self.error = error
    }

    /// The attribute named `key`.
    public subscript(key: String) -> Value? {
        attributes.first { $0.key == key }?.value
    }
}

/// Where finished spans go: an OTLP exporter in production, a list in tests. `export` must not
/// wait on I/O; an exporter that cannot keep up drops spans rather than slow runs down.
public protocol SpanSink: Sendable {
    func export(_ spans: [TraceSpan])
}

/// The spans of runs' traces (docs/operations.md, "Traces").
///
/// A run's steps are driven by different executor processes, hours apart, so its trace cannot
/// be held open in any one of them. Every id is therefore derived from what is durable: the
/// trace id is the run id (a ULID is 128 bits, like a trace id), the root span's id is a hash
/// of the run id, and a step's span id a hash of the run id and the step id. Each process emits
/// its spans as their work ends, already pointing at parents that another process may emit
/// later: the root `cairn.run` when the run ends, a `cairn.step` when the step is recorded.
///
/// - `cairn.run` (root): creation to end, with the function, the status and the error.
/// - `cairn.step`: one per recorded step, from its attempt's request to its record; a sleep
///   from the moment it is planned to its wake-up time.
/// - `cairn.sdk.request` (client): one per call to the app, under the step its reply recorded,
///   else under the run (a failed attempt, planning, the function's return). Its id goes to the
///   app in the `traceparent` header, so the SDK's own spans (received at
///   `POST /v1/traces/userland`) sit under it.
/// - `cairn.queue.wait`: from a work item's publication to the executor taking it up.
/// - `cairn.schedule`: from an event's arrival to the run it started being created.
/// - `cairn.gateway.forward` (server): a connect gateway handing a call to a worker, under the
///   call's span.
public struct RunTracing: Sendable {
    let sink: (any SpanSink)?

    /// Tracing to `sink`; nil traces nothing and costs nothing.
    public init(sink: (any SpanSink)? = nil) {
        self.sink = sink
    }

    public var isEnabled: Bool { sink != nil }

    // MARK: Ids

    /// The trace of a run.
    public static func traceID(of runID: ULID) -> UInt128 { runID.rawValue }

    /// The root span of a run.
    public static func runSpanID(of runID: ULID) -> UInt64 { hash(runID, "run") }

    /// The span of a step of a run.
    public static func stepSpanID(of runID: ULID, step stepID: String) -> UInt64 { hash(runID, "step:" + stepID) }

    /// A fresh span id, for spans nothing else refers to by id.
    public static func newSpanID() -> UInt64 { UInt64.random(in: 1...UInt64.max) }

    /// The W3C `traceparent` header naming `spanID` of `runID`'s trace as the parent, sampled.
    public static func traceparent(runID: ULID, spanID: UInt64) -> String {
        var bytes: [UInt8] = Array("00-".utf8)
        bytes.reserveCapacity(55)
        writeHex(traceID(of: runID), digits: 32, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        writeHex(spanID, digits: 16, to: &bytes)
        bytes += "-01".utf8
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Lower-case hex of `value`, zero-padded to `digits`.
    public static func hex<T: FixedWidthInteger & UnsignedInteger>(_ value: T, digits: Int) -> String {
        var bytes: [UInt8] = []
        writeHex(value, digits: digits, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the lower-case hex of `value`'s low `digits` nibbles to `out`.
    public static func writeHex<T: FixedWidthInteger & UnsignedInteger>(_ value: T, digits: Int, to out: inout [UInt8]) {
        for index in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: (value >> (index * 4)) & 0xf)
            out.append(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
    }

    /// FNV-1a (64 bit) of the run id's bytes and `name`: stable across processes and releases.
    static func hash(_ runID: ULID, _ name: String) -> UInt64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        for byte in runID.bytes { mix(byte) }
        for byte in name.utf8 { mix(byte) }
        return value == 0 ? 1 : value
    }

    // MARK: Spans

    func emit(_ spans: [TraceSpan]) {
        guard let sink, !spans.isEmpty else { return }
        sink.export(spans)
    }

    static func base(runID: ULID, function: String) -> [TraceSpan.Attribute] {
        [.init("cairn.run.id", .string(runID.description)), .init("cairn.function.slug", .string(function))]
    }

    /// The root span, once the run has ended.
    func run(_ runID: ULID, function: String, status: String, error: String?, end: Date) {
        guard isEnabled else { return }
        emit([TraceSpan(
            traceID: Self.traceID(of: runID), spanID: Self.runSpanID(of: runID), parentID: nil, name: "cairn.run", kind: .server,
            start: runID.date, end: end, attributes: Self.base(runID: runID, function: function) + [.init("cairn.run.status", .string(status))],
            error: error)])
    }

    /// A step's span, once it is recorded.
    func step(_ runID: ULID, function: String, stepID: String, name: String, op: String, attempts: Int, start: Date, end: Date) {
        guard isEnabled else { return }
        emit([Self.stepSpan(runID, function: function, stepID: stepID, name: name, op: op, attempts: attempts, start: start, end: end)])
    }

    static func stepSpan(_ runID: ULID, function: String, stepID: String, name: String, op: String, attempts: Int, start: Date, end: Date) -> TraceSpan {
        TraceSpan(
            traceID: traceID(of: runID), spanID: stepSpanID(of: runID, step: stepID), parentID: runSpanID(of: runID), name: "cairn.step",
            start: start, end: end,
            attributes: base(runID: runID, function: function) + [
                .init("cairn.step.id", .string(stepID)), .init("cairn.step.name", .string(name)), .init("cairn.step.op", .string(op)),
                .init("cairn.step.attempts", .int(Int64(attempts))),
            ])
    }

    /// The step a call's reply records now (a result, or a final failure), whose span is
    /// emitted as it is recorded: the parent of the call's span. A call whose step failed and
    /// will be retried (or never is: the run may be cancelled first) hangs under the run, so
    /// that no span ever names a parent nobody emits.
    static func recordedStep(by outcome: SDKOutcome?) -> String? {
        guard case .ops(let ops, _)? = outcome else { return nil }
        let recorded = ops.filter { [.stepRun, .step, .stepFailed].contains($0.kind) }
        return recorded.count == 1 ? recorded[0].id : nil
    }

    /// The step a call ran or was sent for, for its span's `cairn.step.id`.
    static func step(of call: SDKCall, outcome: SDKOutcome?) -> String? {
        if case .ops(let ops, _)? = outcome {
            let ran = ops.filter { [.stepRun, .step, .stepError, .stepFailed].contains($0.kind) }
            if ran.count == 1 { return ran[0].id }
        }
        return call.isDiscovery ? nil : call.stepID
    }

    /// One call to the app: `spanID` is the id sent in its `traceparent`.
    func request(
        _ runID: ULID, function: String, call: SDKCall, spanID: UInt64, url: String, status: Int?, outcome: SDKOutcome?, error: String?,
        start: Date, end: Date
    ) {
        guard isEnabled else { return }
        var attributes = Self.base(runID: runID, function: function) + [
            .init("cairn.step.attempt", .int(Int64(call.attempt))), .init("url.full", .string(url)),
        ]
        if let step = Self.step(of: call, outcome: outcome) { attributes.append(.init("cairn.step.id", .string(step))) }
        if let status { attributes.append(.init("http.response.status_code", .int(Int64(status)))) }
        var failure = error
        switch outcome {
        case .failed(let runFailure, _)?:
            failure = runFailure.body["message"]?.stringValue ?? "the attempt failed"
        case .ops(let ops, _)?:
            if let failed = ops.first(where: { $0.kind == .stepError || $0.kind == .stepFailed }) {
                failure = failed.error?["message"]?.stringValue ?? "the step failed"
            }
        default:
            break
        }
        emit([TraceSpan(
            traceID: Self.traceID(of: runID), spanID: spanID,
            parentID: Self.recordedStep(by: outcome).map { Self.stepSpanID(of: runID, step: $0) } ?? Self.runSpanID(of: runID),
            name: "cairn.sdk.request", kind: .client, start: start, end: end, attributes: attributes, error: failure)])
    }

    /// The time a work item waited in the queue before an executor took it up.
    /// (Under the run: the step an item is for may never be recorded.)
    func queueWait(_ runID: ULID, function: String, call: SDKCall, reason: String, from start: Date, to end: Date) {
        guard isEnabled else { return }
        var attributes = Self.base(runID: runID, function: function) + [.init("cairn.queue.reason", .string(reason))]
        if !call.isDiscovery { attributes.append(.init("cairn.step.id", .string(call.stepID))) }
        emit([TraceSpan(
            traceID: Self.traceID(of: runID), spanID: Self.newSpanID(), parentID: Self.runSpanID(of: runID), name: "cairn.queue.wait",
            start: start, end: end, attributes: attributes)])
    }

    /// The time from an event's arrival (its id holds the moment it was accepted) to the
    /// creation of the run it started (later than the run's id for a debounce or a batch).
    func scheduled(_ runID: ULID, function: String, eventID: ULID, created: Date) {
        guard isEnabled else { return }
        emit([TraceSpan(
            traceID: Self.traceID(of: runID), spanID: Self.newSpanID(), parentID: Self.runSpanID(of: runID), name: "cairn.schedule",
            start: eventID.date, end: created,
            attributes: Self.base(runID: runID, function: function) + [.init("cairn.event.id", .string(eventID.description))])])
    }
}

extension RunTracing {
    /// A connect gateway handed a call to a worker's connection: a span under the call's own
    /// (`traceparent`, as the executor sent it), from the gateway taking the request to the
    /// frame written.
    public func gatewayForward(
        runID: String, traceparent: String?, gatewayID: String, connectionID: String, function: String, start: Date, end: Date
    ) {
        guard isEnabled, let run = ULID(runID), let traceparent else { return }
        let parts = traceparent.split(separator: "-")
        guard parts.count == 4, let parent = UInt64(parts[2], radix: 16) else { return }
        emit([TraceSpan(
            traceID: Self.traceID(of: run), spanID: Self.newSpanID(), parentID: parent, name: "cairn.gateway.forward", kind: .server,
            start: start, end: end,
            attributes: Self.base(runID: run, function: function) + [
                .init("cairn.gateway.id", .string(gatewayID)), .init("cairn.connect.connection_id", .string(connectionID)),
            ])])
    }
}

/// Spans kept in memory, for tests.
public final class CollectedSpans: SpanSink {
    private let spans = Mutex<[TraceSpan]>([])

    public init() {}

    public func export(_ spans: [TraceSpan]) {
        self.spans.withLock { $0 += spans }
    }

    /// Every span exported so far.
    public var all: [TraceSpan] { spans.withLock { $0 } }
}
