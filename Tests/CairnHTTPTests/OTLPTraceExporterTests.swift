import CairnCore
import CairnEngine
@testable import CairnHTTP
import Foundation
import Logging
import Synchronization
import Testing

/// The trace exporter's encoding and queue, without a network: a transport that keeps what it
/// is sent. (The end-to-end tests parse real exports with the OpenTelemetry message classes.)
@Suite struct OTLPTraceExporterTests {
    final class Keeping: SDKTransport {
        let sent = Mutex<[SDKRequest]>([])
        let status: Int

        init(status: Int = 200) { self.status = status }

        func send(_ request: SDKRequest) async throws -> SDKReply {
            sent.withLock { $0.append(request) }
            return SDKReply(status: status, headers: [:], body: Array("{}".utf8))
        }
    }

    static let runID = ULID(milliseconds: 1_767_225_600_000, entropy: [UInt8](repeating: 7, count: 10))

    static func span(_ name: String, parent: UInt64? = nil, error: String? = nil) -> TraceSpan {
        TraceSpan(
            traceID: runID.rawValue, spanID: 0xab, parentID: parent, name: name, kind: .client,
            start: Date(timeIntervalSince1970: 1_767_225_600.25), end: Date(timeIntervalSince1970: 1_767_225_601),
            attributes: [.init("text", .string("quote \" and\nline é")), .init("count", .int(-3)), .init("flag", .bool(true))], error: error)
    }

    static func exporter(_ transport: Keeping, queue: Int = 100, batch: Int = 10) -> OTLPTraceExporter {
        var settings = OTLPSettings(tracesURL: "http://collector.test/v1/traces")
        settings.headers = ["api-key": "k"]
        settings.maximumQueueSize = queue
        settings.maximumBatchSize = batch
        return OTLPTraceExporter(
            settings: settings, resource: ["service.name": "cairn-test"], transport: transport, logger: Logger(label: "test"))
    }

    @Test func spansAreWrittenAsOTLPJSON() throws {
        let bytes = OTLPTraceExporter.encode(
            [Self.span("a \"b\""), Self.span("c", parent: 0x1, error: "it \"failed\"")],
            resource: OTLPTraceExporter.encodeResource(["service.name": "cairn-test"]))
        let request = try JSONValue(parsing: bytes)
        let resourceSpans = try #require(request["resourceSpans"]?[0])
        #expect(resourceSpans["resource"] == ["attributes": [["key": "service.name", "value": ["stringValue": "cairn-test"]]]])
        let spans = try #require(resourceSpans["scopeSpans"]?[0]?["spans"]?.arrayValue)
        #expect(spans.count == 2)
        #expect(spans[0]["traceId"]?.stringValue == RunTracing.hex(Self.runID.rawValue, digits: 32))
        #expect(spans[0]["spanId"] == "00000000000000ab")
        #expect(spans[0]["parentSpanId"] == nil)
        #expect(spans[1]["parentSpanId"] == "0000000000000001")
        #expect(spans[0]["name"] == "a \"b\"")
        #expect(spans[0]["kind"] == 3)
        #expect(spans[0]["startTimeUnixNano"] == "1767225600250000000")
        #expect(spans[0]["endTimeUnixNano"] == "1767225601000000000")
        #expect(spans[0]["attributes"] == [
            ["key": "text", "value": ["stringValue": "quote \" and\nline é"]], ["key": "count", "value": ["intValue": "-3"]],
            ["key": "flag", "value": ["boolValue": true]],
        ])
        #expect(spans[0]["status"] == ["code": 1])
        #expect(spans[1]["status"] == ["code": 2, "message": "it \"failed\""])
    }

    @Test func queuedSpansGoInBatchesAndAFullQueueDropsTheRest() async throws {
        let transport = Keeping()
        let exporter = Self.exporter(transport, queue: 25, batch: 10)
        exporter.export((0..<30).map { Self.span("s\($0)") })
        #expect(exporter.droppedSpans == 5)
        // A full batch rings: only full batches go.
        await exporter.flush(all: false)
        #expect(transport.sent.withLock { $0.count } == 2)
        await exporter.flush()
        let sent = transport.sent.withLock { $0 }
        #expect(sent.count == 3)
        #expect(sent.allSatisfy { $0.url == "http://collector.test/v1/traces" && $0.headers.contains { $0 == ("api-key", "k") } })
        let counts = try sent.map { try #require(try JSONValue(parsing: $0.body)["resourceSpans"]?[0]?["scopeSpans"]?[0]?["spans"]?.arrayValue).count }
        #expect(counts == [10, 10, 5])
        await exporter.flush()
        #expect(transport.sent.withLock { $0.count } == 3, "nothing left to send")
    }

    @Test func aRefusedBatchIsDroppedAndCounted() async throws {
        let exporter = Self.exporter(Keeping(status: 500))
        exporter.export([Self.span("x"), Self.span("y")])
        await exporter.flush()
        #expect(exporter.droppedSpans == 2)
    }
}
