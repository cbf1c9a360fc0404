import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// HTTP load on `POST /e/{key}`: `--connections` kept-alive connections, one request in flight
/// on each.
///
/// Closed loop (default): each connection sends its next request as soon as the last is
/// answered, so the figure is the peak rate. Open loop (`--rate R`): requests are due at a
/// fixed total rate spread over the connections, and latency counts from the moment a request
/// was due, not when it could be sent, so a stalled server shows in the tail (no coordinated
/// omission).
struct IngestLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Load on the event API; prints events per second and latency percentiles."
    )

    @Option(help: "The event API endpoint.")
    var url: String = "http://127.0.0.1:8288/e/bench"

    @Option(help: "Concurrent kept-alive connections.")
    var connections: Int = 64

    @Option(help: "Events in each request (1 sends an object, more an array).")
    var eventsPerRequest: Int = 1

    @Option(help: "Seconds of measured load.")
    var duration: Double = 10

    @Option(help: "Seconds of load before measuring.")
    var warmup: Double = 2

    @Option(help: "Requests per second in all (open loop); omit for closed loop.")
    var rate: Double?

    @Option(help: "Also write every measured latency, in microseconds, one per line, to this file.")
    var latenciesFile: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard connections > 0, eventsPerRequest > 0, eventsPerRequest <= 5_000, duration > 0, warmup >= 0 else {
            throw ValidationError("--connections, --duration must be positive; --events-per-request 1…5000; --warmup ≥ 0")
        }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        guard URL(string: url)?.host != nil else { throw ValidationError("--url must be an http:// URL") }
    }

    func run() async throws {
        let target = URL(string: url)!
        let host = target.host!
        let port = target.port ?? 80
        let body = ByteBuffer(string: Self.body(events: eventsPerRequest))
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target.path)
        head.headers.add(name: "host", value: "\(host):\(port)")
        head.headers.add(name: "content-type", value: "application/json")
        head.headers.add(name: "content-length", value: String(body.readableBytes))

        let clock = ContinuousClock()
        let start = clock.now
        let measureFrom = start + .milliseconds(Int64(warmup * 1_000))
        let end = measureFrom + .milliseconds(Int64(duration * 1_000))
        let interval: Duration? = rate.map { .nanoseconds(Int64(Double(connections) / $0 * 1e9)) }

        let connectionCount = connections
        // The CPU this load generator uses while measuring, to set against the server's.
        async let cpuAtStart: Double = {
            try? await Task.sleep(until: measureFrom, clock: .continuous)
            return processCPUSeconds()
        }()
        let results = try await withThrowingTaskGroup(of: ConnectionResult.self) { group in
            for index in 0..<connectionCount {
                let head = head
                group.addTask {
                    // Open loop: stagger the connections over one interval.
                    let offset = interval.map { $0 * Double(index) / Double(connectionCount) } ?? .zero
                    return try await Self.drive(
                        host: host, port: port, head: head, body: body, firstDue: start + offset, interval: interval,
                        measureFrom: measureFrom, end: end)
                }
            }
            var all: [ConnectionResult] = []
            for try await result in group { all.append(result) }
            return all
        }
        let cpuUsed = processCPUSeconds() - (await cpuAtStart)
        var latencies = results.flatMap(\.latencies)
        latencies.sort()
        if let latenciesFile {
            try latencies.map(String.init).joined(separator: "\n").write(toFile: latenciesFile, atomically: true, encoding: .utf8)
        }
        let requests = latencies.count
        let errors = results.reduce(0) { $0 + $1.errors }
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            let index = min(latencies.count - 1, Int((p * Double(latencies.count)).rounded(.up)) - 1)
            return Double(latencies[max(0, index)]) / 1_000
        }
        let report: [(String, String)] = [
            ("connections", String(connections)), ("events_per_request", String(eventsPerRequest)),
            ("mode", rate == nil ? "\"closed\"" : "\"open\""), ("target_requests_per_second", rate.map { String(Int($0)) } ?? "null"),
            ("seconds", String(duration)), ("requests", String(requests)), ("errors", String(errors)),
            ("requests_per_second", String(Int(Double(requests) / duration))),
            ("events_per_second", String(Int(Double(requests * eventsPerRequest) / duration))),
            ("p50_ms", String(format: "%.3f", percentile(0.50))), ("p90_ms", String(format: "%.3f", percentile(0.90))),
            ("p99_ms", String(format: "%.3f", percentile(0.99))), ("max_ms", String(format: "%.3f", percentile(1.0))),
            ("load_generator_cpu_seconds", String(format: "%.3f", cpuUsed)),
        ]
        if json {
            print("{" + report.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            for (name, value) in report { print("\(name): \(value)") }
        }
    }

    struct ConnectionResult: Sendable {
        /// Microseconds per measured request.
        var latencies: [UInt32] = []
        var errors = 0
    }

    static func body(events: Int) -> String {
        let one = #"{"name":"bench/ingest","data":{"user":"u-1234","plan":"pro","amount":42,"tags":["a","b"]}}"#
        return events == 1 ? one : "[" + Array(repeating: one, count: events).joined(separator: ",") + "]"
    }

    /// One connection's loop until `end`.
    static func drive(
        host: String, port: Int, head: HTTPRequestHead, body: ByteBuffer, firstDue: ContinuousClock.Instant,
        interval: Duration?, measureFrom: ContinuousClock.Instant, end: ContinuousClock.Instant
    ) async throws -> ConnectionResult {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let clock = ContinuousClock()
        var result = ConnectionResult()
        try await channel.executeThenClose { inbound, outbound in
            var responses = inbound.makeAsyncIterator()
            var due = firstDue
            while true {
                if interval != nil, clock.now < due { try await clock.sleep(until: due) }
                let sent = interval == nil ? clock.now : due
                guard sent < end else { break }
                try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(body)), .end(nil)])
                var status: HTTPResponseStatus?
                while let part = try await responses.next() {
                    if case .head(let response) = part { status = response.status }
                    if case .end = part { break }
                }
                guard let status else { throw ValidationError("the server closed the connection") }
                if sent >= measureFrom {
                    if status == .ok {
                        let elapsed = clock.now - sent
                        result.latencies.append(UInt32(clamping: elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
                    } else {
                        result.errors += 1
                    }
                }
                if let interval { due = due + interval }
            }
        }
        return result
    }
}
