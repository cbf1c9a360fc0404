/// Wiring of `cairn-event-api`: ingests events at `POST /e/{eventKey}`.
enum EventAPIRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        RoleParts()
    }
}
