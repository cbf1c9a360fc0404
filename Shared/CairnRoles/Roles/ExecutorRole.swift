/// Wiring of `cairn-executor`: drives runs by calling the app's SDK.
enum ExecutorRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        RoleParts()
    }
}
