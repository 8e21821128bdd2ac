/// Turns generated token ids into text as they arrive, emitting only whole UTF-8 characters.
///
/// A byte-level token can end in the middle of a character (an emoji is often split over two
/// or three tokens); those trailing bytes are held back until the character is complete, so
/// the text handed out never contains a broken character that later tokens would have fixed.
/// The concatenation of everything `append` and `finish` return equals `Tokenizer.decode` of
/// all the ids.
public struct StreamingDecoder: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecial: Bool
    /// Bytes of an incomplete character at the end of the stream.
    private var pending: [UInt8] = []

    /// - Parameter skipSpecial: leave out control tokens, as `Tokenizer.decode(_:skipSpecial:)` does.
    public init(tokenizer: Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Adds one token and returns the text that is now complete (possibly empty).
    public mutating func append(_ id: TokenID) -> String {
        tokenizer.appendBytes(of: id, skipSpecial: skipSpecial, to: &pending)
        let cut = Self.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Ends the stream: returns what is left, an incomplete character becoming U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many leading bytes can be decoded now without changing the final text.
    ///
    /// Only a tail that starts with a lead byte and is shorter than the sequence it announces
    /// is held back. Cutting right before a lead byte is always safe: a lossy UTF-8 decoder
    /// restarts at every byte that is not a continuation byte, so the two halves decode to the
    /// same text as the whole.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        // The last byte that is not a continuation byte (10xxxxxx), within a character's reach.
        var start = bytes.count - 1
        while start >= 0 && start >= bytes.count - 4 && bytes[start] & 0xC0 == 0x80 {
            start -= 1
        }
        guard start >= 0 && start >= bytes.count - 4 else { return bytes.count }
        let needed: Int
        switch bytes[start] {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return bytes.count  // ASCII or a byte that can never start a character
        }
        return bytes.count - start < needed ? start : bytes.count
    }
}
