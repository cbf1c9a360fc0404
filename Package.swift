// swift-tools-version: 6.1
//
// The package graph is Cairn's architecture (see docs/conventions.md):
//
//   CairnCore      pure values and decisions; imports nothing that does I/O
//   CairnEngine    use cases and services written against ports (protocols)
//   CairnPostgres  ┐
//   CairnRedis     ├ adapters: implement Engine ports on a concrete client; never import each other
//   CairnHTTP      ┤
//   CairnDashboard ┘ the operator's web pages: server-rendered templates over the same engine
//                  queries and operations as the REST API
//   CairnConnect   the connect protocol: wire messages generated from proto/connect.proto, the
//                  gateway's per-worker session and the executor's connect transport, on ports
//   CairnRoles     composition roots: configuration + wiring of each role, shared by the role
//                  executables and by `cairn dev`
//   CairnTesting   fixtures and contract suites for the test targets
//   Services/*     executables: a `main` that hands its environment to CairnRoles
//
// `make build` compiles with `--explicit-target-dependency-import-check error`, so a target that
// imports a module it does not declare fails the build.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Cairn",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cairn", targets: ["CairnCLI"]),
        .executable(name: "cairn-event-api", targets: ["CairnEventAPI"]),
        .executable(name: "cairn-api", targets: ["CairnAPI"]),
        .executable(name: "cairn-scheduler", targets: ["CairnScheduler"]),
        .executable(name: "cairn-executor", targets: ["CairnExecutor"]),
        .executable(name: "cairn-gateway", targets: ["CairnGateway"]),
        .executable(name: "cairn-bench", targets: ["CairnBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
    ],
    targets: [
        // MARK: System libraries

        // hiredis's reply reader, found with pkg-config; `make deps` installs libhiredis-dev.
        .systemLibrary(
            name: "CHiredis",
            path: "Shared/CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        // MARK: Layers

        .target(
            name: "CairnCore",
            dependencies: [
                // Pure computation only: SHA-256 and HMAC for request signing and checksums,
                // PBKDF2 for password hashes.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Shared/CairnCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnEngine",
            dependencies: [
                "CairnCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/CairnEngine",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnPostgres",
            dependencies: [
                "CairnCore",
                "CairnEngine",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/CairnPostgres",
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnRedis",
            dependencies: [
                "CHiredis",
                "CairnCore",
                "CairnEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/CairnRedis",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnHTTP",
            dependencies: [
                "CairnCore",
                "CairnEngine",
                "CairnConnect",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/CairnHTTP",
            resources: [.copy("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnDashboard",
            dependencies: [
                "CairnCore",
                "CairnEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/CairnDashboard",
            // Templates, the stylesheet and the script: written here, served from the binary.
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnConnect",
            dependencies: [
                "CairnCore",
                "CairnEngine",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/CairnConnect",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnRoles",
            dependencies: [
                "CairnCore",
                "CairnEngine",
                "CairnConnect",
                "CairnPostgres",
                "CairnRedis",
                "CairnHTTP",
                "CairnDashboard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/CairnRoles",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CairnTesting",
            dependencies: [
                "CairnCore",
                "CairnEngine",
                "CairnPostgres",
                "CairnRedis",
                "CairnRoles",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/CairnTesting",
            swiftSettings: swiftSettings
        ),

        // MARK: Executables (main + environment only)

        .executableTarget(
            name: "CairnEventAPI",
            dependencies: ["CairnRoles"],
            path: "Services/EventAPI",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CairnAPI",
            dependencies: ["CairnRoles"],
            path: "Services/API",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CairnScheduler",
            dependencies: ["CairnRoles"],
            path: "Services/Scheduler",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CairnExecutor",
            dependencies: ["CairnRoles"],
            path: "Services/Executor",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CairnGateway",
            dependencies: ["CairnRoles"],
            path: "Services/Gateway",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CairnCLI",
            dependencies: [
                "CairnCore",
                "CairnEngine",
                "CairnHTTP",
                "CairnPostgres",
                "CairnRoles",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Services/CLI",
            swiftSettings: swiftSettings
        ),

        // MARK: Benchmarks (run by `make bench`; see bench/)

        .executableTarget(
            name: "CairnBench",
            dependencies: [
                "CairnCore",
                "CairnRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/CairnBench",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests

        .testTarget(
            name: "CairnConnectTests",
            dependencies: ["CairnConnect", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Tests/CairnConnectTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CairnCoreTests",
            dependencies: ["CairnCore"],
            path: "Tests/CairnCoreTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CairnEngineTests",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnTesting",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/CairnEngineTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CairnPostgresTests",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnPostgres", "CairnTesting",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/CairnPostgresTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CairnRedisTests",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnRedis", "CairnTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/CairnRedisTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CairnHTTPTests",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnHTTP", "CairnTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Tests/CairnHTTPTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CairnDashboardTests",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnDashboard", "CairnTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/CairnDashboardTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CairnRolesTests",
            dependencies: ["CairnCore", "CairnEngine", "CairnHTTP", "CairnPostgres", "CairnRoles"],
            path: "Tests/CairnRolesTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "CairnCore", "CairnEngine", "CairnHTTP", "CairnPostgres", "CairnRedis", "CairnRoles", "CairnTesting",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/EndToEndTests",
            // The app on the official Python SDK that the tests run (`make test` installs its
            // requirements into a venv), and the headless-Chromium checker of the dashboard.
            exclude: ["PythonApp", "Dashboard"],
            swiftSettings: swiftSettings
        ),
    ]
)
