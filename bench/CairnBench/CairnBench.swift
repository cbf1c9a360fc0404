import ArgumentParser

/// `cairn-bench`: load generators and measurements for `make bench`. Each subcommand measures
/// one thing against servers it is pointed at and prints machine-readable results.
@main
struct CairnBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-bench",
        abstract: "Cairn's benchmarks: each subcommand measures one path against running servers.",
        subcommands: [RedisXADD.self, IngestLoad.self, StepOverhead.self]
    )
}
