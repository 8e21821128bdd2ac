import StrataTokenizer
import Testing

@Suite struct TokenizerBehaviorTests {
    @Test func rejectsUnsupportedModelAndPreTokenizer() {
        #expect(throws: TokenizerError.unsupportedModel("bert")) {
            try Tokenizer(vocabulary: Vocabulary(tokens: ["a"], model: "bert"))
        }
        #expect(TokenizerError.unsupportedModel("bert").description.contains("'gpt2' (byte-level BPE), 'llama'"))
        #expect(throws: TokenizerError.unsupportedPreTokenizer("klingon")) {
            try Tokenizer(vocabulary: Vocabulary(tokens: ["a"], preTokenizer: "klingon"))
        }
        #expect(TokenizerError.unsupportedPreTokenizer("klingon").description.contains("'klingon'"))
        #expect(throws: TokenizerError.tokenOutOfRange(role: "EOS", id: 5, count: 1)) {
            try Tokenizer(vocabulary: Vocabulary(tokens: ["a"], eosID: 5))
        }
    }

    @Test func addSpecialFollowsVocabulary() throws {
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer("gpt-2")
        // GPT-2 has a BOS id but does not ask for it.
        #expect(tokenizer.encode("Hello", addSpecial: true) == [15496])
        var vocabulary = tokenizer.vocabulary
        vocabulary.addBOS = true
        vocabulary.addEOS = true
        let adding = try Tokenizer(vocabulary: vocabulary)
        #expect(adding.encode("Hello", addSpecial: true) == [50256, 15496, 50256])
        #expect(adding.encode("Hello") == [15496])
    }

    @Test func longestSpecialTokenWins() throws {
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer("llama-bpe")
        let ids = tokenizer.encode("<|begin_of_text|>Hi<|eot_id|>")
        #expect(ids == [128000, 13347, 128009])
        #expect(tokenizer.decode(ids, skipSpecial: true) == "Hi")
        #expect(tokenizer.isEndOfGeneration(128009) && tokenizer.isEndOfGeneration(128001))
        #expect(!tokenizer.isEndOfGeneration(128000))
    }

    @Test func bytesOfTokens() throws {
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer("gpt-2")
        #expect(tokenizer.bytes(of: 220) == [0x20])  // "Ġ"
        #expect(tokenizer.bytes(of: 50256) == Array("<|endoftext|>".utf8))
        #expect(tokenizer.bytes(of: -1).isEmpty && tokenizer.bytes(of: 50257).isEmpty)
        #expect(tokenizer.count == 50257)
    }

    @Test func longRunsEncodeQuickly() throws {
        // Heap-based merging keeps pathological words near n log n.
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer("qwen2")
        let text = String(repeating: "=", count: 20000) + String(repeating: " ", count: 20000) + "x"
        let ids = tokenizer.encode(text)
        #expect(tokenizer.decode(ids) == text)
    }
}
