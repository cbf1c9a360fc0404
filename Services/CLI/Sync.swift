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

    @Option(help: "Cairn's API origin. Default: INNGEST_API_BASE_URL, else INNGEST_BASE_URL, else http://127.0.0.1:8288.")
    var api: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let origin = api ?? environment["INNGEST_API_BASE_URL"] ?? environment["INNGEST_BASE_URL"] ?? "http://127.0.0.1:8288"
        var key: SigningKey?
        if let raw = environment["INNGEST_SIGNING_KEY"], !raw.isEmpty {
            do { key = try SigningKey(raw) } catch { throw ValidationError("INNGEST_SIGNING_KEY: \(error.rule)") }
        }
        let reply: CairnAPIClient.Reply
        do {
            reply = try await CairnAPIClient(origin: origin, key: key).requestSync(url: url)
        } catch {
            throw ValidationError("could not reach Cairn at \(origin): \(error)")
        }
        guard reply.status == 200 else {
            let message = reply.body["error"]?.stringValue ?? reply.body.jsonString
            say("sync failed (HTTP \(reply.status)): \(message)")
            throw ExitCode(1)
        }
        let appReply = reply.body["app_reply"]
        let modified = appReply?["modified"]?.boolValue.map { $0 ? "changed" : "unchanged" } ?? "synced"
        say("synced \(url): \(modified)")
    }
}
