import Crypto

/// Step ids as SDKs hash them (docs/protocol.md §4): lowercase hex SHA-1 of the user's id, with
/// `:<n>` appended for the n-th reuse of the same id in one run. The server treats them as
/// opaque keys; this exists for tests and tools that need to name a step.
public enum StepID {
    /// The hashed id of the `index`-th use (0-based) of `userID` in a run.
    public static func hashed(_ userID: String, index: Int = 0) -> String {
        let text = index == 0 ? userID : "\(userID):\(index)"
        return SigningKey.hex(Insecure.SHA1.hash(data: Array(text.utf8)))
    }
}
