import ArgumentParser
import CairnRoles

@main
struct Cairn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Cairn: durable workflows for apps on the Inngest SDKs, on your own infrastructure.",
        subcommands: [Dev.self, Migrate.self, Sync.self]
    )
}
