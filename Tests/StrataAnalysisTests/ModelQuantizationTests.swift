import Foundation
@testable import StrataAnalysis
import StrataEngine
import StrataFormats
import StrataKernels
import StrataTestSupport
import Testing

@Suite("Quantizing models", .serialized)
struct ModelQuantizationTests {
    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("strata-quantize-\(UUID())-\(name)").path
    }

    /// llama.cpp's `llama-quantize` made the registered files; its rules, applied to each file's
    /// tensor list, must give back every tensor's type (Q4_K_M: Qwen2.5-Coder, Gemma 3; Q4_1:
    /// SmolLM2). The Qwen files come from a llama.cpp that counted layers in name order.
    @Test("preset rules choose the types llama.cpp chose in the registered files",
          arguments: [("smollm2-135m", TensorOrder.layerNumber), ("qwen2.5-coder-0.5b", .name), ("gemma3-270m", .layerNumber),
                      ("qwen2.5-coder-1.5b", .name)])
    func presetsMatchLlamaCpp(model name: String, order: TensorOrder) throws {
        guard name != "qwen2.5-coder-1.5b" || TestModels.isAvailable(name) else { return }
        let file = try GGUFFile.open(path: try TestModels.require(name))
        let fileType = try file.metadata.integer("general.file_type")
        let preset = try #require(QuantizationPreset.allCases.first { $0.fileType == fileType }, "file type \(fileType)")
        let quantizer = try ModelQuantizer(source: file)
        let formats = quantizer.formats(preset: preset, order: order)
        if preset == .q4_K_M {
            // the order matters: the other one puts the extra bits elsewhere
            let other = quantizer.formats(preset: preset, order: order == .name ? .layerNumber : .name)
            #expect(other != formats)
        }
        #expect(formats.count == quantizer.quantizedTensors.count && formats.count > 100)
        for tensor in quantizer.quantizedTensors {
            #expect(formats[tensor.name] == tensor.format, "\(name) \(tensor.name): chose \(formats[tensor.name]!), file has \(tensor.format)")
        }
        // everything else (norms, biases) is left as it is
        let untouched = file.tensors.filter { formats[$0.name] == nil }
        #expect(untouched.allSatisfy { $0.shape.count == 1 || $0.name.hasSuffix("_norm.weight") })
    }

    @Test("a quantized tiny model holds the quantizer's bytes and stays close to its float source")
    func tinyFloatModelRoundTrip() throws {
        let sourcePath = try TinyModels.path(TinyModelSpec(format: .f32, seed: 7))
        let source = try GGUFFile.open(path: sourcePath)
        let quantizer = try ModelQuantizer(source: source)
        let reference = try LanguageModel(path: sourcePath)
        let tokens: [TokenID] = [1, 17, 42, 99, 5, 230, 64, 3]
        let plan = LayerPlan.full(layerCount: reference.config.layerCount)
        var referenceTransformer = Transformer(model: reference, pool: WorkerPool(threadCount: 2), numerics: .exact)
        var referenceCache = referenceTransformer.makeCache(capacity: 16)
        let expected = try referenceTransformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &referenceCache, logits: .all)
        for (preset, bound) in [(QuantizationPreset.q8_0, 0.02), (.q4_K_M, 0.2), (.q2_K, 0.6)] {
            let out = temporaryPath("\(preset.rawValue).gguf")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let formats = quantizer.formats(preset: preset)
            _ = try quantizer.write(formats: formats, fileType: preset.fileType, notes: [("strata.quantize.method", .string("test"))],
                                    to: out, overwrite: false)
            let written = try GGUFFile.open(path: out)
            #expect(try written.metadata.integer("general.file_type") == preset.fileType)
            #expect(try written.metadata.string("strata.quantize.method") == "test")
            for tensor in source.tensors {
                let copy = try #require(written.tensor(named: tensor.name))
                let bytes = written.data(for: copy).bytes(at: 0, count: copy.byteCount)
                if let format = formats[tensor.name] {
                    #expect(copy.format == format)
                    let values = source.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount)
                    let quantized = try Quantizer.quantize(matrix: values, rows: tensor.elementCount / tensor.shape[0],
                                                           columns: tensor.shape[0], to: format)
                    #expect(bytes == quantized, "\(preset) \(tensor.name)")
                } else {
                    #expect(copy.format == tensor.format && bytes == source.data(for: tensor).bytes(at: 0, count: tensor.byteCount))
                }
            }
            let model = try LanguageModel(path: out)
            var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
            var cache = transformer.makeCache(capacity: 16)
            let logits = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
            let error = zip(logits.values, expected.values).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
            let scale = expected.values.reduce(0.0) { $0 + Double($1 * $1) }
            let relative = (error / scale).squareRoot()
            #expect(relative < bound, "\(preset): relative logit error \(relative)")
        }
    }

    @Test("a layer-wise mix meets its budget and gives the extra bits by importance")
    func layerWiseMixFollowsImportance() throws {
        let file = try GGUFFile.open(path: try TestModels.require("qwen2.5-coder-0.5b"))
        let quantizer = try ModelQuantizer(source: file)
        let layers = quantizer.shape.layerCount
        let importance = (0..<layers).map { Double(($0 * 7) % layers) }
        for budget in [4.1, 4.6, 5.2] {
            let mix = try LayerWiseMix(quantizer: quantizer, importance: importance, budget: budget)
            let reverse = try LayerWiseMix(quantizer: quantizer, importance: importance, budget: budget, reverse: true)
            #expect(mix.bitsPerWeight <= budget && reverse.bitsPerWeight <= budget)
            #expect(abs(quantizer.layerBitsPerWeight(mix.formats).target - mix.bitsPerWeight) < 1e-9)
            let steps = mix.layerFormats.map { LayerWiseMix.ladder.firstIndex(of: $0)! }
            let reverseSteps = reverse.layerFormats.map { LayerWiseMix.ladder.firstIndex(of: $0)! }
            // a more important layer never has fewer bits; in reverse, never more
            for a in 0..<layers { for b in 0..<layers where importance[a] > importance[b] {
                #expect(steps[a] >= steps[b] && reverseSteps[a] <= reverseSteps[b])
            } }
            #expect(Set(steps).count == 2, "budget \(budget): two adjacent types, found \(mix.layerFormats)")
            #expect(steps.max()! - steps.min()! == 1)
        }
        // spread 2 at exactly the size of a uniform mix: the types one below and one above it,
        // the higher one on the most important layers
        let q4K = LayerWiseMix.bitsPerWeight(quantizer: quantizer, uniform: .q4_K)
        let uniform = try LayerWiseMix(quantizer: quantizer, importance: importance, budget: q4K)
        #expect(uniform.layerFormats == [QuantFormat](repeating: .q4_K, count: layers) && uniform.bitsPerWeight == q4K)
        let spread = try LayerWiseMix(quantizer: quantizer, importance: importance, budget: uniform.bitsPerWeight, spread: 2)
        let middle = LayerWiseMix.ladder.firstIndex(of: uniform.layerFormats[0])!
        #expect(Set(spread.layerFormats) == [LayerWiseMix.ladder[middle - 1], LayerWiseMix.ladder[middle + 1]])
        #expect(spread.bitsPerWeight <= uniform.bitsPerWeight && spread.bitsPerWeight > uniform.bitsPerWeight - 0.2)
        let top = importance.indices.max { importance[$0] < importance[$1] }!
        #expect(spread.layerFormats[top] == LayerWiseMix.ladder[middle + 1])
        #expect(throws: QuantizationRequestError.self) { try LayerWiseMix(quantizer: quantizer, importance: importance, budget: 2.5) }
        #expect(throws: QuantizationRequestError.self) { try LayerWiseMix(quantizer: quantizer, importance: importance, budget: 6.0) }
        #expect(throws: QuantizationRequestError.importanceMismatch(report: 3, model: layers)) {
            try LayerWiseMix(quantizer: quantizer, importance: [1, 2, 3], budget: 4.5)
        }
    }
}
