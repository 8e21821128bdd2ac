import StrataFormats

/// A real byte-level BPE vocabulary of a few hundred tokens, learned at test time from a small
/// bundled text: the 256 byte tokens in GPT-2's byte alphabet, `mergeCount` merges learned by
/// the standard rule (repeatedly merge the most frequent adjacent pair inside words, ties
/// broken by the pair's text), and ChatML's control tokens. The same every run.
public struct TinyVocabulary: Sendable {
    public let tokens: [String]
    public let merges: [String]
    /// Ids of `<|endoftext|>`, `<|im_start|>` and `<|im_end|>`.
    public let endOfText: Int
    public let imStart: Int
    public let imEnd: Int

    public static let mergeCount = 200
    public static let shared = TinyVocabulary()

    /// The ChatML template most byte-level models ship (SmolLM2's and Qwen2's differ from it
    /// only in their default system message).
    public static let chatTemplate = """
        {% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    /// Text the merges are learned from: prose, code and numbers, so the tokenizer's
    /// pre-tokenizer stages all have something to split.
    public static let corpus = """
        The quick brown fox jumps over the lazy dog. The dog sleeps in the sun, and the fox runs
        into the forest. Once upon a time there was a small village by the river, where the
        people grew wheat and the children played by the water. It is a truth universally
        acknowledged that a single man in possession of a good fortune must be in want of a wife.
        def fibonacci(n):
            if n < 2:
                return n
            return fibonacci(n - 1) + fibonacci(n - 2)
        func reverse(_ text: String) -> String { String(text.reversed()) }
        for index in 0..<10 { print(index * 2 + 1) }
        The year 2024 had 366 days; the price was 12.50 dollars and the answer is 42.
        Layers of the model transform the residual stream, and the last layer predicts the next token.
        """

    private init() {
        let alphabet = Self.byteAlphabet
        var tokens = alphabet
        var merges: [String] = []
        // Words as sequences of symbols, each symbol a token text.
        var words: [[String]: Int] = [:]
        for word in Self.words(in: Self.corpus) {
            words[Array(word.utf8).map { alphabet[Int($0)] }, default: 0] += 1
        }
        for _ in 0..<Self.mergeCount {
            var pairs: [Pair: Int] = [:]
            for (symbols, count) in words where symbols.count > 1 {
                for index in 0..<(symbols.count - 1) {
                    pairs[Pair(left: symbols[index], right: symbols[index + 1]), default: 0] += count
                }
            }
            guard let best = pairs.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key })?.key else { break }
            merges.append(best.left + " " + best.right)
            tokens.append(best.left + best.right)
            words = Dictionary(words.map { (Self.merge(best, in: $0.key), $0.value) }, uniquingKeysWith: +)
        }
        endOfText = tokens.count
        imStart = tokens.count + 1
        imEnd = tokens.count + 2
        self.tokens = tokens + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        self.merges = merges
    }

    /// Writes the `tokenizer.*` metadata.
    public func addMetadata(to writer: inout GGUFWriter, preTokenizer: String) {
        writer.set("tokenizer.ggml.model", .string("gpt2"))
        writer.set("tokenizer.ggml.pre", .string(preTokenizer))
        writer.set("tokenizer.ggml.tokens", .array(tokens.map { .string($0) }))
        writer.set("tokenizer.ggml.token_type", .array(tokens.indices.map { .int32($0 >= endOfText ? 3 : 1) }))
        writer.set("tokenizer.ggml.merges", .array(merges.map { .string($0) }))
        writer.set("tokenizer.ggml.bos_token_id", .uint32(UInt32(endOfText)))
        writer.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(imEnd)))
        writer.set("tokenizer.ggml.add_bos_token", .bool(false))
        writer.set("tokenizer.chat_template", .string(Self.chatTemplate))
    }

    private struct Pair: Hashable, Comparable {
        let left: String
        let right: String
        static func < (a: Pair, b: Pair) -> Bool { (a.left, a.right) < (b.left, b.right) }
    }

    private static func merge(_ pair: Pair, in symbols: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < symbols.count {
            if index + 1 < symbols.count && symbols[index] == pair.left && symbols[index + 1] == pair.right {
                result.append(pair.left + pair.right)
                index += 2
            } else {
                result.append(symbols[index])
                index += 1
            }
        }
        return result
    }

    /// GPT-2-style words: a run of letters, digits or other symbols, with the space before it.
    private static func words(in text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var currentClass = -1
        for character in text {
            let characterClass = character.isLetter ? 0 : character.isNumber ? 1 : character.isWhitespace ? 2 : 3
            let continues = characterClass == currentClass && characterClass != 2
                || (currentClass == 2 && current == " " && characterClass != 2)
            if !continues && !current.isEmpty {
                words.append(current)
                current = ""
            }
            current.append(character)
            currentClass = characterClass
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// GPT-2's map from bytes to printable characters: printable Latin-1 bytes stand for
    /// themselves, the rest are shifted to U+0100 and up.
    static let byteAlphabet: [String] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var mapping = [Int: Int]()
        for byte in printable { mapping[byte] = byte }
        var next = 0
        for byte in 0..<256 where mapping[byte] == nil {
            mapping[byte] = 256 + next
            next += 1
            printable.append(byte)
        }
        return (0..<256).map { String(UnicodeScalar(UInt32(mapping[$0]!))!) }
    }()
}
