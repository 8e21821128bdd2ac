import Foundation
import StrataTokenizer
import Testing

/// The real models' tokenizers against transformers and llama.cpp reference runs
/// (`Fixtures/model-references.json`, built by `Fixtures/make-model-references.py`).
@Suite struct ModelTokenizerTests {
    struct EncodeCase: Decodable {
        let text: String
        let ids: [TokenID]
        let parseSpecial: Bool
        let source: String
    }

    struct DecodeCase: Decodable {
        let ids: [TokenID]
        let text: String
        let source: String
    }

    struct CountCase: Decodable {
        let file: String
        let tokens: Int
        let source: String
    }

    struct ModelReferences: Decodable {
        let encode: [EncodeCase]
        let decode: [DecodeCase]
        let counts: [CountCase]
    }

    static func references(_ model: String) throws -> ModelReferences {
        let data = try Data(contentsOf: TokenizerFixtures.url("model-references.json"))
        let all = try JSONDecoder().decode([String: ModelReferences].self, from: data)
        return try #require(all[model])
    }

    static let models = ["smollm2-135m", "qwen2.5-coder-0.5b"]

    @Test(arguments: models)
    func encodesLikeReferences(model: String) throws {
        let tokenizer = try TokenizerFixtures.modelTokenizer(model)
        for reference in try Self.references(model).encode {
            let ids = tokenizer.encode(reference.text, addSpecial: true, parseSpecial: reference.parseSpecial)
            #expect(ids == reference.ids, "\(reference.source): \(reference.text.debugDescription)")
        }
    }

    @Test(arguments: models)
    func decodesLikeReferences(model: String) throws {
        let tokenizer = try TokenizerFixtures.modelTokenizer(model)
        for reference in try Self.references(model).decode {
            #expect(tokenizer.decode(reference.ids) == reference.text, "\(reference.source)")
            var stream = StreamingDecoder(tokenizer: tokenizer)
            let streamed = reference.ids.map { stream.append($0) }.joined() + stream.finish()
            #expect(streamed == reference.text, "streamed: \(reference.source)")
        }
    }

    /// Whole-file token counts; also the encode-speed figure quoted in the design notes.
    @Test(arguments: models)
    func countsWholeFiles(model: String) throws {
        let tokenizer = try TokenizerFixtures.modelTokenizer(model)
        for reference in try Self.references(model).counts {
            let text = try TokenizerFixtures.text(reference.file)
            let clock = ContinuousClock()
            var ids: [TokenID] = []
            let elapsed = clock.measure { ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false) }
            #expect(ids.count == reference.tokens, "\(reference.source)")
            let seconds = Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)
            print("\(model): \(reference.file) \(text.utf8.count) bytes -> \(ids.count) tokens in "
                + "\(String(format: "%.3f", seconds)) s (\(String(format: "%.1f", Double(text.utf8.count) / seconds / 1e6)) MB/s)")
            #expect(tokenizer.decode(ids) == text, "round trip of \(reference.file)")
            #expect(seconds < 5, "encoding \(reference.file) took \(seconds) s")
        }
    }

    @Test func smolLMSpecialTokens() throws {
        let tokenizer = try TokenizerFixtures.modelTokenizer("smollm2-135m")
        let chat = "<|im_start|>user\nHi<|im_end|>\n"
        let ids = tokenizer.encode(chat)
        #expect(ids.first == 1 && ids.contains(2))
        #expect(tokenizer.decode(ids) == chat)
        #expect(tokenizer.decode(ids, skipSpecial: true) == "user\nHi\n")
        // Without special parsing the markers are plain text.
        #expect(!tokenizer.encode(chat, parseSpecial: false).contains(1))
        // llama.cpp: <|endoftext|>, <|im_end|> by name, <reponame> as the FIM repository token.
        #expect(tokenizer.endOfGenerationTokens == [0, 2, 4])
        #expect(tokenizer.encode("Hi", addSpecial: true) == tokenizer.encode("Hi"))  // add_bos_token = false
    }

    @Test func qwenSpecialTokens() throws {
        let tokenizer = try TokenizerFixtures.modelTokenizer("qwen2.5-coder-0.5b")
        #expect(tokenizer.isEndOfGeneration(151645))  // <|im_end|>, the EOS
        #expect(tokenizer.isEndOfGeneration(151643))  // <|endoftext|>
        #expect(!tokenizer.isEndOfGeneration(151644))  // <|im_start|>
        // <|fim_pad|>, <|repo_name|>, <|file_sep|> end generation in llama.cpp too, and so does
        // the ordinary token `</s>` (128247): llama.cpp matches that name for every model.
        #expect(tokenizer.endOfGenerationTokens == [128247, 151643, 151645, 151662, 151663, 151664])
        // User-defined tokens are recognised even without special parsing.
        #expect(tokenizer.encode("<tool_call>", parseSpecial: false) == [151657])
    }
}
