/// Wiring of `cairn-gateway`: holds connect workers' WebSocket connections.
enum GatewayRole {
    static func parts(_ dependencies: RoleDependencies) -> RoleParts {
        RoleParts()
    }
}
