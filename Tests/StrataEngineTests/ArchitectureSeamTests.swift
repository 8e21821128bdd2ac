import Foundation
import StrataEngine
import StrataFormats
import StrataKernels
import StrataTestSupport
import StrataTokenizer
import Testing

/// Llama with two things no built-in family has: the token embedding under another name, and
/// embedding rows scaled before the first layer (as Gemma scales them by the root of the hidden size).
private struct ScaledEmbeddingLlama: ModelArchitecture {
    static let scale: Float = 3
    var name: String { "scaled-llama" }
    var rotaryStyle: RotaryStyle { .adjacentPairs }
    var tensorNames: TensorNames {
        var names = TensorNames()
        names.tokenEmbedding = "tok_embeddings.weight"
        return names
    }
    func embeddingScale(config: ModelConfig) -> Float? { Self.scale }
}

/// Llama with per-head q/k RMSNorms and RMSNorm'd sublayer outputs (as Qwen3 and Gemma 3 have).
private struct NormalizedLlama: ModelArchitecture {
    var name: String { "normalized-llama" }
    var rotaryStyle: RotaryStyle { .adjacentPairs }
    var hasQueryKeyNorms: Bool { true }
    var hasSublayerOutputNorms: Bool { true }
}

/// Llama attending with half the usual scale (as Gemma takes its scale from a hyper-parameter).
private struct HalfScaleLlama: ModelArchitecture {
    var name: String { "half-scale-llama" }
    var rotaryStyle: RotaryStyle { .adjacentPairs }
    func attentionScale(config: ModelConfig) -> Float { LlamaArchitecture().attentionScale(config: config) / 2 }
}

/// The architecture seam is real: families defined here, in the test target alone, load and run
/// through `ArchitectureRegistry` and do what they declare.
@Suite("Model families added from outside the engine")
struct ArchitectureSeamTests {
    /// A tiny llama with float32 matrices, so scaled copies of its tensors are exact.
    let base: String
    let spec = TinyModelSpec(format: .f32, layers: 2, seed: 7)

    init() throws {
        base = try TinyModels.path(spec)
    }

    /// A copy of the base model declaring family `architecture` (its `llama.` keys renamed, then
    /// `metadata` set), tensors renamed by `rename`, replaced by `replace` (float32 values) and `added`.
    func rewritten(
        architecture: String, metadata: [String: GGUFValue] = [:], rename: [String: String] = [:],
        replace: [String: (([Float]) -> [Float])] = [:], added: [(name: String, values: [Float])] = []
    ) throws -> String {
        let file = try GGUFFile.open(path: base)
        var writer = GGUFWriter(alignment: file.alignment)
        for key in file.metadata.keys {
            guard let value = file.metadata[key] else { continue }
            let renamed = key.hasPrefix("llama.") ? architecture + key.dropFirst("llama".count) : key
            writer.set(renamed, key == "general.architecture" ? .string(architecture) : value)
        }
        for (key, value) in metadata { writer.set(key, value) }
        for tensor in file.tensors {
            let name = rename[tensor.name] ?? tensor.name
            if let transform = replace[tensor.name] {
                let values = file.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount)
                try writer.addTensor(name: name, shape: tensor.shape, format: .f32, data: Self.bytes(transform(values)))
            } else {
                try writer.addTensor(name: name, shape: tensor.shape, format: tensor.format, data: file.data(for: tensor))
            }
        }
        for (name, values) in added {
            try writer.addTensor(name: name, shape: [values.count], format: .f32, data: Self.bytes(values))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-architecture-\(UUID()).gguf").path
        try writer.write(to: path)
        return path
    }

    static func bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    func tensorValues(_ name: String) throws -> [Float] {
        let file = try GGUFFile.open(path: base)
        let tensor = try #require(file.tensor(named: name))
        return file.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount)
    }

    /// Every row's logits of a short prompt.
    func logits(_ model: LanguageModel, numerics: Numerics) throws -> [Float] {
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: numerics)
        var cache = transformer.makeCache(capacity: 32)
        let tokens = model.tokenizer.encode("the quick brown fox jumps over", addSpecial: false)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        return Array(try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all).values)
    }

    @Test("a file of an unregistered family is refused, naming the file, the family and the supported ones")
    func unregisteredFamilyIsRefused() throws {
        let path = try rewritten(architecture: "scaled-llama", rename: ["token_embd.weight": "tok_embeddings.weight"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: ModelLoadError.self) { try LanguageModel(path: path) }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains(path) && message.contains("'scaled-llama'") && message.contains("supported: llama, qwen2"),
                "\(message)")
    }

    @Test("a registered family's tensor names and embedding scale are used: bitwise the logits of llama with the scale folded in",
          arguments: [Numerics.exact, .fast])
    func scaledEmbeddingFamily(numerics: Numerics) throws {
        let scale = ScaledEmbeddingLlama.scale
        let toy = try rewritten(architecture: "scaled-llama", rename: ["token_embd.weight": "tok_embeddings.weight"])
        // The same model as llama: the embedding pre-scaled, the output matrix (tied in the
        // base model) the unscaled embedding.
        let embedding = try tensorValues("token_embd.weight")
        let folded = try rewritten(architecture: "llama", replace: ["token_embd.weight": { $0.map { $0 * scale } }])
        let foldedWithOutput = try GGUFFile.open(path: folded)
        defer { for path in [toy, folded] { try? FileManager.default.removeItem(atPath: path) } }
        var writer = GGUFWriter(alignment: foldedWithOutput.alignment)
        for key in foldedWithOutput.metadata.keys { writer.set(key, foldedWithOutput.metadata[key]!) }
        for tensor in foldedWithOutput.tensors {
            try writer.addTensor(name: tensor.name, shape: tensor.shape, format: tensor.format, data: foldedWithOutput.data(for: tensor))
        }
        let embeddingShape = try #require(foldedWithOutput.tensor(named: "token_embd.weight")).shape
        try writer.addTensor(name: "output.weight", shape: embeddingShape, format: .f32, data: Self.bytes(embedding))
        let reference = folded + ".with-output.gguf"
        try writer.write(to: reference)
        defer { try? FileManager.default.removeItem(atPath: reference) }

        let registry = ArchitectureRegistry.standard.adding(ScaledEmbeddingLlama())
        let model = try LanguageModel(path: toy, architectures: registry)
        #expect(model.config.architecture == "scaled-llama" && model.architecture is ScaledEmbeddingLlama)
        #expect(model.config.tiedOutput)
        let expected = try logits(LanguageModel(path: reference), numerics: numerics)
        let found = try logits(model, numerics: numerics)
        #expect(firstBitwiseDifference(found, expected) == nil)
        // and the scale matters: without it the logits are another model's
        #expect(try logits(LanguageModel(path: base), numerics: numerics) != found)
    }

    @Test("a family's attention scale is used: bitwise the logits of llama with queries twice as large")
    func attentionScaleFamily() throws {
        let config = try LanguageModel(path: base).config
        var doubled: [String: ([Float]) -> [Float]] = [:]
        for layer in 0..<config.layerCount { doubled["blk.\(layer).attn_q.weight"] = { $0.map { $0 * 2 } } }
        let halfScale = try rewritten(architecture: "half-scale-llama", replace: doubled)
        let llamaDoubled = try rewritten(architecture: "llama", replace: doubled)
        defer { for path in [halfScale, llamaDoubled] { try? FileManager.default.removeItem(atPath: path) } }
        let registry = ArchitectureRegistry.standard.adding(HalfScaleLlama())
        let found = try logits(LanguageModel(path: halfScale, architectures: registry), numerics: .exact)
        // powers of two scale exactly, so the half scale undoes the doubled queries bit for bit
        #expect(firstBitwiseDifference(found, try logits(LanguageModel(path: base), numerics: .exact)) == nil)
        #expect(try logits(LanguageModel(path: llamaDoubled), numerics: .exact) != found)
    }

    @Test("a family with q/k and sublayer-output norms requires their tensors and is blind to the scale of what they normalize")
    func normalizedFamily() throws {
        let config = try LanguageModel(path: base).config
        var norms: [(name: String, values: [Float])] = []
        var random = SeededGenerator(seed: 11)
        for layer in 0..<config.layerCount {
            for (suffix, count) in [("attn_q_norm.weight", config.headDimensions), ("attn_k_norm.weight", config.headDimensions),
                                    ("post_attention_norm.weight", config.hiddenSize), ("post_ffw_norm.weight", config.hiddenSize)] {
                norms.append(("blk.\(layer).\(suffix)", (0..<count).map { _ in Float.random(in: 0.8...1.2, using: &random) }))
            }
        }
        let registry = ArchitectureRegistry.standard.adding(NormalizedLlama())
        let missing = try rewritten(architecture: "normalized-llama", added: Array(norms.dropFirst()))
        defer { try? FileManager.default.removeItem(atPath: missing) }
        let error = #expect(throws: ModelLoadError.self) { try LanguageModel(path: missing, architectures: registry) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("'blk.0.attn_q_norm.weight' is missing"))

        // Scaling what an RMSNorm reads by a power of two changes nothing it computes but the
        // weight of epsilon, which is made too small to count.
        var scaled: [String: ([Float]) -> [Float]] = [:]
        for layer in 0..<config.layerCount {
            for suffix in ["attn_q.weight", "attn_k.weight", "attn_output.weight", "ffn_down.weight"] {
                scaled["blk.\(layer).\(suffix)"] = { $0.map { $0 * 4 } }
            }
        }
        let tinyEpsilon: [String: GGUFValue] = ["normalized-llama.attention.layer_norm_rms_epsilon": .float32(1e-20)]
        let normalized = try rewritten(architecture: "normalized-llama", metadata: tinyEpsilon, added: norms)
        let normalizedScaled = try rewritten(architecture: "normalized-llama", metadata: tinyEpsilon, replace: scaled, added: norms)
        let llamaScaled = try rewritten(architecture: "llama", replace: scaled)
        defer { for path in [normalized, normalizedScaled, llamaScaled] { try? FileManager.default.removeItem(atPath: path) } }
        func largestDifference(_ first: [Float], _ second: [Float]) -> Float {
            zip(first, second).map { abs($0 - $1) }.max() ?? .infinity
        }
        let normalizedLogits = try logits(LanguageModel(path: normalized, architectures: registry), numerics: .exact)
        let normalizedScaledLogits = try logits(LanguageModel(path: normalizedScaled, architectures: registry), numerics: .exact)
        #expect(firstBitwiseDifference(normalizedLogits, normalizedScaledLogits) == nil)
        // the norms are what makes the difference: plain llama changes with the scale
        let llamaLogits = try logits(LanguageModel(path: base), numerics: .exact)
        let llamaScaledLogits = try logits(LanguageModel(path: llamaScaled), numerics: .exact)
        #expect(largestDifference(llamaLogits, llamaScaledLogits) > 0.1)
        #expect(largestDifference(normalizedLogits, llamaLogits) > 0.1)
    }
}
