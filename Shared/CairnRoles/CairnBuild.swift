import Foundation

/// What this build is, for `cairn_build_info{version,role,commit}`.
public enum CairnBuild {
    /// The release version.
    public static let version = "0.1.0"
    /// The source commit: `CAIRN_COMMIT`, which the container image sets from its build
    /// argument; `unknown` when it was not given.
    public static var commit: String {
        ProcessInfo.processInfo.environment["CAIRN_COMMIT"].flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
    }
}
