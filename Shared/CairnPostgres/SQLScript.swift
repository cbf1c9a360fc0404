/// Splits a SQL script into its statements.
///
/// PostgresNIO speaks the extended query protocol, which takes one statement per message, so a
/// migration file is sent statement by statement inside one transaction. Semicolons inside
/// quoted strings, quoted identifiers, dollar-quoted bodies and comments do not end a
/// statement. Statements are returned trimmed; empty ones (and comment-only ones) are dropped.
enum SQLScript {
    static func statements(_ script: String) -> [String] {
        let bytes = Array(script.utf8)
        var statements: [String] = []
        var start = 0
        var hasCode = false
        var index = 0

        func finish(upTo end: Int) {
            if hasCode {
                let text = String(decoding: bytes[start..<end], as: UTF8.self)
                statements.append(text.trimmingSQLWhitespace())
            }
            start = end + 1
            hasCode = false
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "-"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                // Block comments nest in Postgres.
                var depth = 0
                while index < bytes.count {
                    if bytes[index] == UInt8(ascii: "/") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*") {
                        depth += 1; index += 2
                    } else if bytes[index] == UInt8(ascii: "*") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "/") {
                        depth -= 1; index += 2
                        if depth == 0 { break }
                    } else {
                        index += 1
                    }
                }
                continue
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                // A doubled quote inside is an escaped quote; skipping pairs handles it.
                hasCode = true
                index += 1
                while index < bytes.count && bytes[index] != byte { index += 1 }
                index += 1
                continue
            case UInt8(ascii: "$"):
                hasCode = true
                if let tagEnd = dollarTagEnd(bytes, from: index) {
                    let tag = bytes[index...tagEnd]
                    var probe = tagEnd + 1
                    while probe < bytes.count {
                        if bytes[probe] == UInt8(ascii: "$") && bytes[probe...].starts(with: tag) {
                            break
                        }
                        probe += 1
                    }
                    index = min(bytes.count, probe + tag.count)
                    continue
                }
            case UInt8(ascii: ";"):
                finish(upTo: index)
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                break
            default:
                hasCode = true
            }
            index += 1
        }
        finish(upTo: bytes.count)
        return statements
    }

    /// The index of the closing `$` of a dollar-quote tag starting at `start` (`$$` or
    /// `$name$`), or `nil` when the `$` is not one (a positional parameter such as `$1`).
    private static func dollarTagEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start + 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "$") { return index }
            let isLetter = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || byte == UInt8(ascii: "_") || byte >= 0x80
            let isDigit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            if isLetter || (isDigit && index > start + 1) { index += 1 } else { return nil }
        }
        return nil
    }
}

extension String {
    fileprivate func trimmingSQLWhitespace() -> String {
        let isSpace = { (c: Character) in c == " " || c == "\n" || c == "\t" || c == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
