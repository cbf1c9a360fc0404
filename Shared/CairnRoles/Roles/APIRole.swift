/// Wiring of `cairn-api`: the control plane — app sync, queries and the SDK's callbacks.
enum APIRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        RoleParts()
    }
}
