import StrataTokenizer
import Testing

/// `Vocabulary(gguf:)`: keys read from real files, and llama.cpp's defaults where absent.
@Suite struct VocabularyGGUFTests {
    @Test func smolLM() throws {
        let vocabulary = try TokenizerFixtures.modelTokenizer("smollm2-135m").vocabulary
        #expect(vocabulary.tokens.count == 49152 && vocabulary.merges.count == 48900)
        #expect(vocabulary.model == "gpt2" && vocabulary.preTokenizer == "smollm")
        #expect(vocabulary.bosID == 1 && vocabulary.eosID == 2 && vocabulary.unknownID == 0 && vocabulary.paddingID == 2)
        #expect(vocabulary.endOfTurnID == 2)  // <|im_end|>, found by name
        #expect(!vocabulary.addBOS && !vocabulary.addEOS)
        #expect(vocabulary.tokenTypes[1] == .control && vocabulary.tokenTypes[100] == .normal)
    }

    @Test func llamaBPEAddsBOSByDefault() throws {
        // The file has no add_bos_token key; llama.cpp adds BOS for the Llama 3 family.
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer("llama-bpe")
        #expect(tokenizer.vocabulary.addBOS)
        #expect(tokenizer.encode("Hello", addSpecial: true) == [128000, 9906])
        #expect(tokenizer.vocabulary.endOfTurnID == 128009)  // <|eot_id|>
    }

    @Test func qwenCoder() throws {
        let vocabulary = try TokenizerFixtures.modelTokenizer("qwen2.5-coder-0.5b").vocabulary
        #expect(vocabulary.preTokenizer == "qwen2" && vocabulary.eosID == 151645 && vocabulary.bosID == 151643)
        #expect(vocabulary.endOfTurnID == 151645)  // <|im_end|> preferred over <|endoftext|>
        #expect(vocabulary.tokenTypes[151657] == .userDefined && vocabulary.tokenTypes[151665] == .unused)
    }
}
