import ArgumentParser
import Foundation

/// `cairn-bench`: load generators and measurements for `make bench`. Each subcommand measures
/// one thing against servers it is pointed at and prints machine-readable results.
@main
struct CairnBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-bench",
        abstract: "Cairn's benchmarks: each subcommand measures one path against running servers.",
        subcommands: [RedisXADD.self, IngestLoad.self, StepOverhead.self, FlowControlBench.self, QueueBench.self]
    )
}

/// CPU time this process has used so far, user plus system, in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
