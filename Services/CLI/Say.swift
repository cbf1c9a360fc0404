import Foundation

/// Writes one line to standard output at once (no stdio buffering), so progress shows as it
/// happens even when output goes to a file or a pipe.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Writes one line to standard error at once.
func sayError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
