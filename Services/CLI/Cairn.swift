import ArgumentParser
import CairnRoles

struct Cairn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Cairn: durable workflows for apps on the Inngest SDKs, on your own infrastructure.",
        subcommands: [
            Dev.self, Migrate.self, Sync.self, Send.self, Runs.self, ShowRun.self, Cancel.self, Rerun.self, Replay.self, Pause.self,
            Resume.self,
        ]
    )
}

extension Cairn {
    /// Parses the command line and runs the command. (From an async function, `main()` resolves
    /// to the async entry point; top-level code would pick the synchronous one.)
    static func start() async {
        await main()
    }
}
