import Dispatch
import Foundation
import Logging

/// A bound on a stop that never ends. Once SIGTERM or SIGINT arrives, a process still running
/// `limit` later logs it as critical and exits with status 1, as an orchestrator's SIGKILL
/// would. Nothing is lost either way: leases lapse and other processes take the work over,
/// and the outbox keeps what was not published (docs/durability.md). It exists so that a
/// service that fails to end its graceful shutdown shows in the log instead of holding the
/// process up for ever.
struct ShutdownBackstop: ~Copyable {
    private let sources: [any DispatchSourceSignal]

    init(limit: Duration, logger: Logger) {
        let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
        sources = [SIGTERM, SIGINT].map { number in
            // Dispatch delivers a signal to a source only while its default action is off;
            // the service group's own handling turns it off too.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                    logger.critical(
                        "the graceful shutdown did not end in time; exiting",
                        metadata: ["limit_seconds": "\(seconds)"])
                    exit(1)
                }
            }
            source.resume()
            return source
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
