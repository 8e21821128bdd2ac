import Foundation

// Report plumbing of the analysis layer and the command line (package access: not part of
// any library's API, and no extension on Foundation's types leaks into users' code).

/// JSON has no numbers for infinity and NaN, yet Strata's reports can hold them honestly (a
/// model without one of its layers may have infinite perplexity). They are written as the
/// strings "Infinity", "-Infinity" and "NaN" (Python's `float()` reads all three) and read back
/// the same way, instead of failing the whole report when it is encoded.
extension JSONEncoder.NonConformingFloatEncodingStrategy {
    package static let namedNonFinite = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
}

extension JSONDecoder.NonConformingFloatDecodingStrategy {
    package static let namedNonFinite = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
}

extension JSONEncoder {
    /// The encoder of every JSON report Strata writes: pretty, key-sorted, slashes as they are,
    /// non-finite numbers named.
    package static func forReports() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .namedNonFinite
        return encoder
    }
}
