// libFuzzer entry for CairnCore's JSON parser (`JSONValue(parsing:)`).
//
// Besides "does not crash", every input checks properties the parser documents:
// - an error's byte offset lies inside the input (0...count);
// - the byte and `String` entry points agree on valid UTF-8 input (same value or same error);
// - a parsed value serializes to JSON that parses back to an equal value, with an equal hash,
//   and serializing that again gives the same bytes.
// A broken property stops the run through `fatalError`, which libFuzzer records as a crash.
import CairnCore
import LibFuzzerDriver

/// The program's entry: SwiftPM aliases `main` to `FuzzJSON_main` (see Package.swift).
@_cdecl("FuzzJSON_main")
public func fuzzJSONMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzJSON(data, size) })
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: size > 0 ? data : nil, count: size)

    let fromBytes: Result<JSONValue, JSONParseError>
    do throws(JSONParseError) {
        fromBytes = .success(try JSONValue(parsing: input))
    } catch {
        fromBytes = .failure(error)
    }

    // The `String` entry point sees the same bytes only when they are valid UTF-8.
    if let text = String(validating: input, as: UTF8.self) {
        let fromText: Result<JSONValue, JSONParseError>
        do throws(JSONParseError) {
            fromText = .success(try JSONValue(parsing: text))
        } catch {
            fromText = .failure(error)
        }
        if fromText != fromBytes {
            fatalError("bytes and String entry points disagree: \(fromBytes) vs \(fromText)")
        }
    }

    switch fromBytes {
    case .failure(let error):
        if error.offset < 0 || error.offset > size {
            fatalError("error offset \(error.offset) outside input of \(size) bytes: \(error)")
        }
        _ = error.description
    case .success(let value):
        let written = value.serialized()
        let reparsed: JSONValue
        do throws(JSONParseError) {
            reparsed = try JSONValue(parsing: written)
        } catch {
            fatalError("serialized output does not parse: \(error)")
        }
        if reparsed != value || reparsed.hashValue != value.hashValue {
            fatalError("round trip changed the value")
        }
        if reparsed.serialized() != written {
            fatalError("serializing is not stable across a round trip")
        }
        touch(value)
    }
    return 0
}

/// Reads every accessor, so number conversions and lookups run on fuzzed values too.
private func touch(_ value: JSONValue) {
    switch value {
    case .number(let number):
        _ = number.int64Value
        _ = number.doubleValue
        _ = number.isInteger
    case .array(let elements):
        _ = value[elements.count / 2]
        for element in elements.prefix(64) { touch(element) }
    case .object(let object):
        if let first = object.first { _ = value[first.key] }
        for member in object.prefix(64) { touch(member.value) }
    default:
        _ = value.stringValue
        _ = value.boolValue
    }
}
