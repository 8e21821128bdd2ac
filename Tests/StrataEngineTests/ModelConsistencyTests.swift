import Foundation
import StrataEngine
import StrataFormats
import StrataTestSupport
import Testing

/// Model files whose metadata and tensors do not fit together must be refused when loaded,
/// naming the field, rather than run as some other model or fail mid-generation.
@Suite("Model files that do not fit together", .serialized)
struct ModelConsistencyTests {
    /// A temporary copy of the model at `source` with `edit` applied to its metadata; tensors are
    /// copied unchanged, or with the bytes `replace` returns for them.
    func rewritten(
        _ source: String, replace: (TensorInfo) -> [UInt8]? = { _ in nil }, edit: (inout [String: GGUFValue]) -> Void
    ) throws -> String {
        let file = try GGUFFile.open(path: source)
        var values: [String: GGUFValue] = [:]
        for key in file.metadata.keys { values[key] = file.metadata[key] }
        edit(&values)
        var writer = GGUFWriter(alignment: file.alignment)
        for key in file.metadata.keys { if let value = values[key] { writer.set(key, value) } }
        for key in values.keys.sorted() where file.metadata[key] == nil { writer.set(key, values[key]!) }
        for tensor in file.tensors {
            if let bytes = replace(tensor) {
                try writer.addTensor(name: tensor.name, shape: tensor.shape, format: tensor.format, data: bytes)
            } else {
                try writer.addTensor(name: tensor.name, shape: tensor.shape, format: tensor.format, data: file.data(for: tensor))
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-edited-\(UUID()).gguf").path
        try writer.write(to: path)
        return path
    }

    func loadError(_ path: String) -> String? {
        do {
            _ = try LanguageModel(path: path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func unchangedCopyLoads() throws {
        let path = try rewritten(try TestModels.require("smollm2-135m")) { _ in }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(loadError(path) == nil)
    }

    @Test func layersBeyondBlockCountAreRefused() throws {
        let path = try rewritten(try TestModels.require("smollm2-135m")) { $0["llama.block_count"] = .uint32(29) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(loadError(path))
        #expect(error.contains("llama.block_count") && error.contains("blk.29."), "\(error)")
    }

    @Test func moreTokensThanEmbeddingRowsAreRefused() throws {
        let path = try rewritten(try TestModels.require("smollm2-135m")) { values in
            guard case .array(let tokens) = values["tokenizer.ggml.tokens"] else { return }
            values["tokenizer.ggml.tokens"] = .array(tokens + [.string("<|extra|>")])
            if case .array(let types) = values["tokenizer.ggml.token_type"] {
                values["tokenizer.ggml.token_type"] = .array(types + [.int32(3)])
            }
            values["llama.vocab_size"] = .uint32(UInt32(tokens.count))
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(loadError(path))
        #expect(error.contains("tokenizer.ggml.tokens") && error.contains("49153 tokens"), "\(error)")
    }

    @Test func unknownTokenTypesAreRefused() throws {
        let model = try TestModels.require("smollm2-135m")
        let unknown = try rewritten(model) { values in
            guard case .array(var types) = values["tokenizer.ggml.token_type"] else { return }
            types[5] = .int32(99)
            values["tokenizer.ggml.token_type"] = .array(types)
        }
        defer { try? FileManager.default.removeItem(atPath: unknown) }
        let error = try #require(loadError(unknown))
        #expect(error.contains("tokenizer.ggml.token_type[5] = 99"), "\(error)")
        let short = try rewritten(model) { values in
            guard case .array(let types) = values["tokenizer.ggml.token_type"] else { return }
            values["tokenizer.ggml.token_type"] = .array(Array(types.prefix(10)))
        }
        defer { try? FileManager.default.removeItem(atPath: short) }
        let shortError = try #require(loadError(short))
        #expect(shortError.contains("has 10 entries for 49152 tokens"), "\(shortError)")
    }

    @Test("a model whose logits are NaN stops generation with an error, not with made-up text")
    func nonFiniteLogitsAreReported() throws {
        let path = try rewritten(try TestModels.require("smollm2-135m"), replace: { tensor in
            guard tensor.name == "output_norm.weight" else { return nil }
            return Array(repeating: Float.nan, count: tensor.elementCount).flatMap { value in
                withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
            }
        }) { _ in }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try LanguageModel(path: path)
        for speculation in [nil, SpeculationParameters(draft: .ngram)] {
            var generator = Generator(
                transformer: Transformer(model: model), prompt: [1, 2, 3],
                parameters: GenerationParameters(maxTokens: 4, sampling: .greedy, speculation: speculation))
            #expect(throws: GenerationError.nonFiniteLogits(position: 3)) { while try generator.next() != nil {} }
        }
    }
}
