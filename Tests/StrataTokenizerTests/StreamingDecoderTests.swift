import StrataTokenizer
import Testing

@Suite struct StreamingDecoderTests {
    /// A vocabulary of the 256 single-byte tokens (in the GPT-2 byte alphabet), so each id is a byte.
    static let byteTokenizer: Tokenizer = {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var shifted: UInt32 = 256
        let tokens = (0..<256).map { byte -> String in
            if printable.contains(byte) { return String(Unicode.Scalar(UInt8(byte))) }
            defer { shifted += 1 }
            return String(Unicode.Scalar(shifted)!)
        }
        return try! Tokenizer(vocabulary: Vocabulary(tokens: tokens, preTokenizer: "gpt-2"))
    }()

    @Test func holdsIncompleteCharacters() {
        var stream = StreamingDecoder(tokenizer: Self.byteTokenizer)
        // "a🙂b": 61 F0 9F 99 82 62
        #expect(stream.append(0x61) == "a")
        #expect(stream.append(0xF0) == "")
        #expect(stream.append(0x9F) == "")
        #expect(stream.append(0x99) == "")
        #expect(stream.append(0x82) == "🙂")
        #expect(stream.append(0x62) == "b")
        #expect(stream.finish() == "")
    }

    @Test func finishReplacesTruncatedCharacter() {
        var stream = StreamingDecoder(tokenizer: Self.byteTokenizer)
        #expect(stream.append(0xE2) == "")
        #expect(stream.append(0x80) == "")
        #expect(stream.finish() == "\u{FFFD}")
        #expect(stream.finish() == "")
    }

    @Test func invalidBytesAreNotHeldForever() {
        var stream = StreamingDecoder(tokenizer: Self.byteTokenizer)
        #expect(stream.append(0x80) == "\u{FFFD}")  // a stray continuation byte
        #expect(stream.append(0xFF) == "\u{FFFD}")  // never valid in UTF-8
        #expect(stream.append(0xC3) == "")
        #expect(stream.append(0x41) == "\u{FFFD}A")  // the character was interrupted
    }

    /// Whatever the bytes, the streamed text equals decoding everything at once.
    @Test func streamingEqualsWholeDecode() {
        var generator = SystemRandomNumberGenerator()
        let interesting: [TokenID] = [0x41, 0x20, 0x80, 0x9F, 0xBF, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0xED, 0xF4, 0xC0]
        for _ in 0..<2000 {
            let ids = (0..<Int.random(in: 0...12, using: &generator)).map { _ in interesting.randomElement(using: &generator)! }
            var stream = StreamingDecoder(tokenizer: Self.byteTokenizer)
            let streamed = ids.map { stream.append($0) }.joined() + stream.finish()
            #expect(streamed == Self.byteTokenizer.decode(ids), "\(ids)")
        }
    }
}
