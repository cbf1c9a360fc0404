import ArgumentParser
import CairnRedis
import Foundation
import Logging
import Synchronization

/// Pipelined `XADD` through CairnRedis, shaped like `redis-benchmark -P <depth> -c <clients>
/// XADD key * field value`, so the two rates compare the client, not the workload.
struct RedisXADD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-xadd",
        abstract: "Pipelined XADD through CairnRedis; prints commands per second."
    )

    @Option(help: "Redis URL.")
    var redisURL: String = "redis://127.0.0.1:6379/0"

    @Option(help: "Total XADD commands.")
    var count: Int = 1_000_000

    @Option(help: "Commands per pipeline (one flush, one round trip).")
    var pipeline: Int = 64

    @Option(help: "Concurrent senders, each on its own pooled connection.")
    var clients: Int = 50

    @Option(help: "The stream written to; deleted before and after.")
    var stream: String = "cairn-bench:xadd"

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard count > 0, pipeline > 0, clients > 0 else {
            throw ValidationError("--count, --pipeline and --clients must be positive")
        }
    }

    func run() async throws {
        var logger = Logger(label: "cairn-bench")
        logger.logLevel = .warning
        let configuration = try RedisConfiguration(url: redisURL, poolSize: clients, clientName: "cairn-bench")
        let client = RedisClient(configuration: configuration, logger: logger)
        try await client.connect()
        do {
            try await measure(client)
            await client.shutdown()
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private func measure(_ client: RedisClient) async throws {
        _ = try await client.send("DEL", .string(stream))

        // Every pipeline is the same command list: field/value as redis-benchmark sends them.
        let command: [RedisArgument] = ["XADD", .string(stream), "*", "field", "value"]
        let batch = Array(repeating: command, count: pipeline)
        let batches = (count + pipeline - 1) / pipeline
        let next = BatchCounter(limit: batches)

        // Warm every connection so the measurement excludes connect time.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients { group.addTask { _ = try await client.send("PING") } }
            try await group.waitForAll()
        }

        let start = ContinuousClock.now
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var failed = 0
                    while next.take() {
                        for result in try await client.pipeline(batch) {
                            if case .failure = result { failed += 1 }
                        }
                    }
                    return failed
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - start
        let sent = batches * pipeline
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(sent) / seconds
        let length = try await client.xlen(stream)
        _ = try await client.send("DEL", .string(stream))
        guard failures == 0, length == sent else {
            throw ValidationError("\(failures) XADD replies were errors; the stream holds \(length) of \(sent) entries")
        }
        if json {
            say(#"{"commands":\#(sent),"seconds":\#(seconds),"per_second":\#(Int(rate)),"pipeline":\#(pipeline),"clients":\#(clients)}"#)
        } else {
            say("cairn-redis XADD: \(sent) commands in \(String(format: "%.3f", seconds)) s = \(Int(rate)) per second (pipeline \(pipeline), clients \(clients))")
        }
    }
}

/// Hands out batch numbers to concurrent senders until `limit` are taken.
final class BatchCounter: Sendable {
    private let taken: Mutex<Int>
    private let limit: Int

    init(limit: Int) {
        self.taken = Mutex(0)
        self.limit = limit
    }

    /// `true` when the caller may send one more batch.
    func take() -> Bool {
        taken.withLock { value in
            guard value < limit else { return false }
            value += 1
            return true
        }
    }
}

/// Writes one line to standard output at once.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
