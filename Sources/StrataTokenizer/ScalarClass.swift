/// The Unicode character classes the pre-tokenizer regexes test (`\p{L}`, `\p{N}`, `\s`, `\p{P}`).
///
/// Every scalar inside the text being split has at least one member, so an empty set means
/// "past the end of the fragment"; the splitters rely on that the way a regex relies on the
/// end of its input.
struct ScalarClass: OptionSet, Sendable {
    let rawValue: UInt8

    /// General category L* (`\p{L}`).
    static let letter = ScalarClass(rawValue: 1 << 0)
    /// General category N* (`\p{N}`).
    static let number = ScalarClass(rawValue: 1 << 1)
    /// Python's and Rust's `\s`: the Unicode White_Space property.
    static let whitespace = ScalarClass(rawValue: 1 << 2)
    /// Anything that is not a letter, number or whitespace (`[^\s\p{L}\p{N}]`).
    static let other = ScalarClass(rawValue: 1 << 3)
    /// General category P* (`\p{P}`), tested only by the legacy default pre-tokenizer.
    static let punctuation = ScalarClass(rawValue: 1 << 4)

    /// Classifies one scalar; ASCII, nearly all of real text, comes from a table.
    @inline(__always)
    static func of(_ scalar: Unicode.Scalar) -> ScalarClass {
        let value = scalar.value
        if value < 128 {
            return asciiTable[Int(value)]
        }
        return classifyNonASCII(scalar)
    }

    private static let asciiTable: [ScalarClass] = (0..<128).map { classifyNonASCII(Unicode.Scalar(UInt8($0))) }

    private static func classifyNonASCII(_ scalar: Unicode.Scalar) -> ScalarClass {
        if isWhitespace(scalar.value) {
            return .whitespace
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return [.other, .punctuation]
        default:
            return .other
        }
    }

    /// The White_Space property, spelled out so the set cannot drift with the Unicode version.
    private static func isWhitespace(_ value: UInt32) -> Bool {
        switch value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
}
