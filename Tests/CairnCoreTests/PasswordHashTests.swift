import CairnCore
import Foundation
import Testing

/// The salt and key of `PasswordHashTests.known1000`, to build malformed variants from.
private let salt24 = "AAECAwQFBgcICQoLDA0ODw=="
private let key44 = "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4="

@Suite struct PasswordHashTests {
    static let salt: [UInt8] = Array(0..<16)
    static let password = "correct horse battery staple"
    /// PBKDF2-HMAC-SHA256 of `password` under `salt` (bytes 0…15), 32 bytes, computed
    /// independently with Python's `hashlib.pbkdf2_hmac`.
    static let known1000 = "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4="
    static let known1 = "pbkdf2-sha256$1$AAECAwQFBgcICQoLDA0ODw==$1j+h90zX49tJj90UoeiqNJN7oenPZj24OnkNRYqOhJo="

    @Test func aHashIsPBKDF2SHA256InTheSelfDescribingForm() {
        #expect(PasswordHash.encode(password: Self.password, salt: Self.salt, rounds: 1000) == Self.known1000)
        #expect(PasswordHash.encode(password: Self.password, salt: Self.salt, rounds: 1) == Self.known1)
        #expect(PasswordHash.defaultRounds == 600_000)
    }

    @Test func theRightPasswordVerifiesAndAWrongOneDoesNot() {
        let salt = [UInt8](repeating: 7, count: 16)
        let encoded = PasswordHash.encode(password: "s3cret-enough!", salt: salt, rounds: 500)
        #expect(PasswordHash.verify(password: "s3cret-enough!", encoded: encoded))
        #expect(!PasswordHash.verify(password: "s3cret-enough", encoded: encoded))
        #expect(!PasswordHash.verify(password: "S3cret-enough!", encoded: encoded))
        #expect(!PasswordHash.verify(password: "", encoded: encoded))
        // Another salt makes another hash of the same password.
        #expect(PasswordHash.encode(password: "s3cret-enough!", salt: [UInt8](repeating: 8, count: 16), rounds: 500) != encoded)
    }

    @Test func verificationUsesTheRoundsStoredInTheString() {
        #expect(PasswordHash.verify(password: Self.password, encoded: Self.known1000))
        #expect(PasswordHash.verify(password: Self.password, encoded: Self.known1))
        #expect(PasswordHash.rounds(of: Self.known1000) == 1000)
        // The same salt and key under another round count is another hash.
        #expect(!PasswordHash.verify(password: Self.password, encoded: Self.known1000.replacingOccurrences(of: "$1000$", with: "$1001$")))
        #expect(!PasswordHash.verify(password: Self.password, encoded: Self.known1.replacingOccurrences(of: "$1$", with: "$2$")))
    }

    @Test func aTamperedSaltOrKeyVerifiesNothing() {
        let tamperedKey = Self.known1000.replacingOccurrences(of: "ppsX", with: "ppsY")
        let tamperedSalt = Self.known1000.replacingOccurrences(of: "AAEC", with: "AAED")
        #expect(PasswordHash.rounds(of: tamperedKey) == 1000)
        #expect(!PasswordHash.verify(password: Self.password, encoded: tamperedKey))
        #expect(!PasswordHash.verify(password: Self.password, encoded: tamperedSalt))
    }

    @Test(arguments: [
        "",
        "pbkdf2-sha256",
        "pbkdf2-sha256$1000$\(salt24)",
        "pbkdf2-sha256$1000$\(salt24)$\(key44)$",
        "pbkdf2-sha1$1000$\(salt24)$\(key44)",
        "PBKDF2-SHA256$1000$\(salt24)$\(key44)",
        "pbkdf2-sha256$0$\(salt24)$\(key44)",
        "pbkdf2-sha256$-1000$\(salt24)$\(key44)",
        "pbkdf2-sha256$+1000$\(salt24)$\(key44)",
        "pbkdf2-sha256$01000$\(salt24)$\(key44)",
        "pbkdf2-sha256$1e3$\(salt24)$\(key44)",
        "pbkdf2-sha256$$\(salt24)$\(key44)",
        "pbkdf2-sha256$10000001$\(salt24)$\(key44)",
        "pbkdf2-sha256$99999999999999999999$\(salt24)$\(key44)",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0O$\(key44)",
        "pbkdf2-sha256$1000$\(salt24)$ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cQ==",
        "pbkdf2-sha256$1000$\(salt24)$\(key44)AAAA",
        "pbkdf2-sha256$1000$\(salt24)$!!sXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4=",
        "pbkdf2-sha256$1000$\(salt24)$ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        // base64url, not base64:
        "pbkdf2-sha256$1$\(salt24)$1j-h90zX49tJj90UoeiqNJN7oenPZj24OnkNRYqOhJo=",
    ])
    func aMalformedEncodingVerifiesNoPassword(_ encoded: String) {
        #expect(PasswordHash.rounds(of: encoded) == nil)
        #expect(!PasswordHash.verify(password: Self.password, encoded: encoded))
    }

    @Test func thePlaceholderIsWellFormedAndMatchesNothing() {
        let placeholder = PasswordHash.placeholder(rounds: 700)
        #expect(PasswordHash.rounds(of: placeholder) == 700)
        #expect(!PasswordHash.verify(password: "", encoded: placeholder))
        #expect(!PasswordHash.verify(password: Self.password, encoded: placeholder))
    }

    @Test func tokensAreBase64URLAndStoredAsTheirSHA256() {
        #expect(AccountToken.text([0xFB, 0xFF, 0xFE, 0x00]) == "-__-AA")
        #expect(AccountToken.text([UInt8](repeating: 0xFF, count: 32)).count == 43)
        let digest = AccountToken.digest("abc")
        #expect(digest.map { String(format: "%02x", $0) }.joined() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test(arguments: [
        (AccountRole.admin, AccountRole.admin, true), (.admin, .operator, true), (.admin, .viewer, true),
        (.operator, .admin, false), (.operator, .operator, true), (.operator, .viewer, true),
        (.viewer, .admin, false), (.viewer, .operator, false), (.viewer, .viewer, true),
    ])
    func aRoleAllowsItselfAndTheRolesBelow(_ role: AccountRole, _ needed: AccountRole, _ allowed: Bool) {
        #expect(role.allows(needed) == allowed)
    }

    @Test func rolesParseFromTheirLowerCaseNames() throws {
        #expect(try AccountRole(parsing: "viewer") == .viewer)
        #expect(try AccountRole(parsing: "operator") == .operator)
        #expect(try AccountRole(parsing: "admin") == .admin)
        #expect(AccountRole.operator.rawValue == "operator")
        for unknown in ["owner", "Admin", " admin", ""] {
            let error = #expect(throws: AccountRoleError.self) { try AccountRole(parsing: unknown) }
            #expect(error?.value == unknown)
        }
        let error = #expect(throws: AccountRoleError.self) { try AccountRole(parsing: "owner") }
        #expect(error?.description == #"role: must be one of viewer, operator, admin, got "owner""#)
    }
}
