// swift-tools-version: 6.1
//
// libFuzzer harnesses for Cairn's three byte/text parsers (see README.md). Build and run them
// with `bench/fuzz/native/run.sh`; this package is not part of the root build.
//
// Why the library sources are symlinks rather than a dependency on the root package: the root
// package declares no library products (only executables), and SwiftPM lets a dependent package
// use products only, so `.package(path: "../../..")` cannot provide `CairnCore`. Each library
// target below therefore compiles the repository's own files through symlinks in `Sources/`:
//   CairnCore   the JSON parser/writer and the expression language (the files those need, none
//               that import Crypto, so swift-crypto does not have to be built)
//   CairnRedis  RESPReader (internal; reached with `@testable import`), RESPValue, RedisError
//   CHiredis    the repository's module map for the system hiredis (pkg-config `hiredis`)
// plus LibFuzzerDriver, a header declaring libFuzzer's `LLVMFuzzerRunDriver`: SwiftPM links an
// executable target on Linux with `main` aliased to `<Target>_main`, so each harness defines that
// function and starts libFuzzer from it (libFuzzer's own `main` is not used).
// Library targets get `-sanitize=fuzzer,address` too, so their code carries the coverage
// instrumentation libFuzzer needs; the system libhiredis itself is not instrumented.
import PackageDescription

let fuzz: [SwiftSetting] = [
    .unsafeFlags(["-sanitize=fuzzer,address"]),
]

let language: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let harness: [SwiftSetting] = language + [
    .unsafeFlags(["-sanitize=fuzzer,address", "-parse-as-library"]),
]

// SwiftPM does not pass a target's Swift flags to the link step, so the executables repeat the
// sanitizer flags as linker flags: that is what links libFuzzer's `main` and the ASan runtime.
let link: [LinkerSetting] = [
    .unsafeFlags(["-sanitize=fuzzer,address"]),
]

let package = Package(
    name: "CairnNativeFuzz",
    platforms: [.macOS(.v15)],
    targets: [
        .target(name: "LibFuzzerDriver", path: "Sources/LibFuzzerDriver"),
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis", pkgConfig: "hiredis"),
        .target(name: "CairnCore", path: "Sources/CairnCore", swiftSettings: language + fuzz),
        .target(
            name: "CairnRedis",
            dependencies: ["CHiredis"],
            path: "Sources/CairnRedis",
            swiftSettings: language + [.unsafeFlags(["-sanitize=fuzzer,address", "-enable-testing"])]
        ),
        .executableTarget(name: "FuzzJSON", dependencies: ["CairnCore", "LibFuzzerDriver"], swiftSettings: harness, linkerSettings: link),
        .executableTarget(name: "FuzzExpression", dependencies: ["CairnCore", "LibFuzzerDriver"], swiftSettings: harness, linkerSettings: link),
        .executableTarget(name: "FuzzRESP", dependencies: ["CairnRedis", "LibFuzzerDriver"], swiftSettings: harness, linkerSettings: link),
    ]
)
