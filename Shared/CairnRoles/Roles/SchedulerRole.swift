/// Wiring of `cairn-scheduler`: decides when runs start or resume.
enum SchedulerRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        RoleParts()
    }
}
