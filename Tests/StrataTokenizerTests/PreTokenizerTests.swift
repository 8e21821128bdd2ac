@testable import StrataTokenizer
import Testing

/// The hand-written regex splitters on cases the llama.cpp vectors touch only lightly.
@Suite struct PreTokenizerTests {
    func words(_ text: String, _ name: String) throws -> [String] {
        let preTokenizer = try PreTokenizer(name: name)
        let bytes = Array(text.utf8)
        var classified = ClassifiedText()
        classified.load(bytes, 0..<bytes.count)
        var ends: [Int] = []
        var scratch: [Int] = []
        preTokenizer.split(classified, into: &ends, scratch: &scratch)
        var start = 0
        return ends.map { end in
            defer { start = end }
            return String(decoding: bytes[classified.byteOffsets[start]..<classified.byteOffsets[end]], as: UTF8.self)
        }
    }

    @Test func gpt2() throws {
        #expect(try words("Hello  world's 2024!!\n\n", "gpt-2") == ["Hello", " ", " world", "'s", " 2024", "!!", "\n\n"])
        #expect(try words("I'M here", "gpt-2") == ["I", "'", "M", " here"])  // contractions are case-sensitive
        #expect(try words("a\u{3000}b", "gpt-2") == ["a", "\u{3000}", "b"])  // ideographic space is \s
    }

    @Test func smollmIsolatesDigits() throws {
        #expect(try words("abc123 x٣4", "smollm") == ["abc", "1", "2", "3", " x", "٣", "4"])
    }

    @Test func llama3() throws {
        #expect(try words("I'M 12345 ok?!\n\n  x", "llama-bpe") == ["I", "'M", " ", "123", "45", " ok", "?!\n\n", " ", " x"])
        #expect(try words("  \n\tfoo", "llama-bpe") == ["  \n", "\tfoo"])
    }

    @Test func qwen2SplitsSingleDigits() throws {
        #expect(try words("x=12;", "qwen2") == ["x", "=", "1", "2", ";"])
    }

    @Test func legacyDefault() throws {
        #expect(try words("a+b=12345", "default") == ["a", "+", "b", "=", "123", "45"])
    }

    @Test func emptyText() throws {
        #expect(try words("", "qwen2").isEmpty)
    }
}
