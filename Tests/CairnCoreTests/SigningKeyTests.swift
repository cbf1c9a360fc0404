import CairnCore
import Testing

/// Signing keys, signatures and API authorization, against vectors observed on the wire.
@Suite struct SigningKeyTests {
    static let raw = "signkey-prod-" + String(repeating: "0123456789abcdef", count: 4)

    @Test func signsLikeTheSDKs() throws {
        let key = try SigningKey(Self.raw)
        #expect(key.hex == String(repeating: "0123456789abcdef", count: 4))
        #expect(key.signatureHeader(body: Array(#"{"a":1}"#.utf8), unixSeconds: 1_700_000_000)
            == "t=1700000000&s=6f935f4999a22697d3186d2f528b9ba93bd1bce44e799b690985927c66c072d2")
        #expect(key.hashed.hasPrefix("4884fdaa"))
        #expect(key.hashed.hasSuffix("c837"))
        #expect(key.description == "signkey-prod-<redacted>")
    }

    @Test(arguments: ["signkey-prod-", "signkey--abcd", "abc", "xyz1", ""])
    func refusesMalformedKeys(raw: String) {
        #expect(throws: SigningKeyError.self) { try SigningKey(raw) }
    }

    @Test func authorizesEveryFormOfEitherKey() throws {
        let primary = try SigningKey(Self.raw)
        let fallback = try SigningKey("signkey-test-abcd")
        let keys = SigningKeys(primary: primary, fallback: fallback)
        #expect(keys.authorizes(authorization: "Bearer \(primary.hashed)"))  // Python
        #expect(keys.authorizes(authorization: "Bearer signkey-prod-\(primary.hashed)"))  // JS
        #expect(keys.authorizes(authorization: "Bearer \(Self.raw)"))  // the plain key
        #expect(keys.authorizes(authorization: "bearer \(fallback.hashed)"))
        #expect(!keys.authorizes(authorization: nil))
        #expect(!keys.authorizes(authorization: "Bearer "))
        #expect(!keys.authorizes(authorization: "Bearer \(String(primary.hashed.dropLast()))0"))
        #expect(!keys.authorizes(authorization: primary.hashed))
    }

    @Test func verifiesSignaturesWithinTheirAge() throws {
        let keys = SigningKeys(primary: try SigningKey(Self.raw), fallback: try SigningKey("abcd"))
        let body = Array(#"{"a":1}"#.utf8)
        let header = keys.primary.signatureHeader(body: body, unixSeconds: 1_700_000_000)
        #expect(keys.verify(signatureHeader: header, body: body, nowSeconds: 1_700_000_100) == .valid)
        #expect(keys.verify(signatureHeader: header, body: body, nowSeconds: 1_700_000_400) == .expired)
        #expect(keys.verify(signatureHeader: header, body: body, nowSeconds: 1_700_000_400, maximumAge: nil) == .valid)
        #expect(keys.verify(signatureHeader: header, body: Array(#"{"a":2}"#.utf8), nowSeconds: 1_700_000_000) == .mismatch)
        let fallbackHeader = try SigningKey("abcd").signatureHeader(body: body, unixSeconds: 1_700_000_000)
        #expect(keys.verify(signatureHeader: fallbackHeader, body: body, nowSeconds: 1_700_000_000) == .valid)
        #expect(keys.verify(signatureHeader: nil, body: body, nowSeconds: 0) == .missing)
        #expect(keys.verify(signatureHeader: "s=abc", body: body, nowSeconds: 0) == .malformed)
    }

    @Test func secretsCompareEqualOnlyWhenIdentical() {
        #expect(ConstantTime.equals(Array("key-1".utf8), Array("key-1".utf8)))
        #expect(!ConstantTime.equals(Array("key-1".utf8), Array("key-2".utf8)))
        #expect(!ConstantTime.equals(Array("key".utf8), Array("key-1".utf8)))
        #expect(!ConstantTime.equals([UInt8](), Array("k".utf8)))
        #expect(ConstantTime.equals([UInt8](), [UInt8]()))
        #expect(ConstantTime.contains([Array("a".utf8), Array("b".utf8)], Array("b".utf8)))
        #expect(!ConstantTime.contains([Array("a".utf8), Array("b".utf8)], Array("c".utf8)))
        #expect(!ConstantTime.contains([[UInt8]](), Array("a".utf8)))
    }
}
