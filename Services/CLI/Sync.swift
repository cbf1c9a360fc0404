import ArgumentParser
import CairnCore
import CairnHTTP
import Foundation

/// `cairn sync URL`: ask a running Cairn to sync the app served at URL.
struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sync the app served at URL (its Inngest serve endpoint) with a running Cairn.",
        discussion: """
            Cairn sends the app the PUT that makes it register its functions, and prints the outcome. \
            Outside dev mode, INNGEST_SIGNING_KEY authenticates the call.
            """
    )

    @Argument(help: "The app's serve URL, e.g. http://127.0.0.1:8000/api/inngest.")
    var url: String

    @OptionGroup var options: APIOptions

    func run() async throws {
        let reply = try await options.call("POST", "/v1/apps/sync", body: ["url": .string(url)])
        let modified = reply["app_reply"]?["modified"]?.boolValue.map { $0 ? "changed" : "unchanged" } ?? "synced"
        options.print(reply) { say("synced \(url): \(modified)") }
    }
}
