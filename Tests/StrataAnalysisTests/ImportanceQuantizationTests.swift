import Foundation
@testable import StrataAnalysis
import StrataEngine
import StrataFormats
import StrataKernels
import StrataTestSupport
import Testing

/// `ModelQuantizer.write` with activation statistics, on a tiny float32 model (so every
/// quantized tensor is new bytes, not a copy of the source's).
@Suite("Quantizing with activation statistics", .serialized)
struct ImportanceQuantizationTests {
    static let spec = TinyModelSpec(architecture: "qwen2", format: .f32, seed: 7)

    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("strata-importance-\(UUID())-\(name)").path
    }

    /// Statistics over two windows of the tiny model's tokenized corpus.
    func statistics() throws -> ActivationStatistics {
        let model = try TinyModels.model(Self.spec)
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        let tokens = model.tokenizer.encode(String(repeating: TinyVocabulary.corpus, count: 2), addSpecial: false)
        return try ActivationStatistics.collect(
            transformer: &transformer, calibration: try CalibrationSet(tokens: tokens, context: 64, windows: 2))
    }

    /// `Σ_rows Σ_j importance_j (w_ij - ŵ_ij)²` for the float rows `values` and their quantized `tensor`.
    func weightedError(_ values: [Float], _ file: GGUFFile, _ tensor: TensorInfo, importance: [Float]) -> Double {
        let quantized = file.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount)
        var error = 0.0
        for (index, (value, approximation)) in zip(values, quantized).enumerated() {
            let difference = Double(value - approximation)
            error += Double(importance[index % importance.count]) * difference * difference
        }
        return error
    }

    @Test("the statistics change exactly the tensors they have vectors for, and lower their weighted error at Q3_K and Q2_K")
    func statisticsReachTheirTensors() throws {
        let sourcePath = try TinyModels.path(Self.spec)
        let source = try GGUFFile.open(path: sourcePath)
        let quantizer = try ModelQuantizer(source: source)
        let statistics = try statistics()
        // q/k/v, output projection, gate/up, down per layer, and the separate output matrix
        #expect(statistics.meanSquares.count == 7 * Self.spec.layers + 1)
        for format in [QuantFormat.q3_K, .q2_K] {
            let formats = quantizer.uniformFormats(format)
            let plain = temporaryPath("plain.gguf"), weighted = temporaryPath("weighted.gguf")
            defer { for path in [plain, weighted] { try? FileManager.default.removeItem(atPath: path) } }
            let plainSummary = try quantizer.write(formats: formats, fileType: nil, notes: [], to: plain, overwrite: false)
            let summary = try quantizer.write(formats: formats, fileType: nil, notes: [], to: weighted, overwrite: false,
                                              statistics: statistics)
            #expect(plainSummary.tensorsWithImportance == nil)
            #expect(summary.tensorsWithImportance == statistics.meanSquares.count)
            #expect(summary.fileBytes == plainSummary.fileBytes)
            let (without, with) = (try GGUFFile.open(path: plain), try GGUFFile.open(path: weighted))
            var plainTotal = 0.0, weightedTotal = 0.0
            for tensor in source.tensors {
                let (a, b) = (try #require(without.tensor(named: tensor.name)), try #require(with.tensor(named: tensor.name)))
                let plainBytes = without.data(for: a).bytes(at: 0, count: a.byteCount)
                let weightedBytes = with.data(for: b).bytes(at: 0, count: b.byteCount)
                guard let importance = statistics.meanSquares[tensor.name] else {
                    #expect(plainBytes == weightedBytes, "\(format) \(tensor.name) has no vector but changed")
                    continue
                }
                #expect(plainBytes != weightedBytes, "\(format) \(tensor.name) has a vector but did not change")
                let values = source.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount)
                let expected = try Quantizer.quantize(matrix: values, rows: tensor.elementCount / tensor.shape[0],
                                                      columns: tensor.shape[0], to: format, importance: importance)
                #expect(weightedBytes == expected, "\(format) \(tensor.name): not the quantizer's bytes with its vector")
                let plainError = weightedError(values, without, a, importance: importance)
                let weightedError = weightedError(values, with, b, importance: importance)
                // the weighted scale search minimizes this error (with per-weight refinements), so
                // it can tie but not lose by more than rounding
                #expect(weightedError <= plainError * (1 + 1e-6),
                        "\(format) \(tensor.name): weighted error \(weightedError) with the statistics, \(plainError) without")
                plainTotal += plainError
                weightedTotal += weightedError
            }
            #expect(weightedTotal < 0.97 * plainTotal, "\(format): weighted error \(weightedTotal) against \(plainTotal)")
        }
    }

    @Test("a per-tensor mix measures each candidate as the write quantizes it: with the vector as importance")
    func measuredMixQuantizesWithTheStatistics() throws {
        let source = try GGUFFile.open(path: try TinyModels.path(Self.spec))
        let quantizer = try ModelQuantizer(source: source)
        let statistics = try statistics()
        let tensor = try #require(source.tensor(named: "blk.2.ffn_down.weight"))
        let importance = try #require(statistics.meanSquares[tensor.name])
        let choices = try MeasuredMix.measure(tensor, in: quantizer, columnWeights: importance, pool: nil)
        let values = source.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount)
        let columns = tensor.shape[0]
        for (format, error) in zip(choices.formats, choices.errors) {
            func weightedError(quantizedWith weights: [Float]?) throws -> Double {
                let bytes = try Quantizer.quantize(matrix: values, rows: tensor.elementCount / columns, columns: columns,
                                                   to: format, importance: weights)
                let decoded = ByteView(ByteStorage.copying(bytes)).dequantized(format, count: tensor.elementCount)
                return zip(values, decoded).enumerated().reduce(0.0) { total, element in
                    let difference = Double(element.element.0 - element.element.1)
                    return total + Double(importance[element.offset % columns]) * difference * difference
                }
            }
            let expected = try weightedError(quantizedWith: importance)
            #expect(abs(error - expected) <= 1e-9 * expected, "\(format): measured \(error), expected \(expected)")
            #expect(error != (try weightedError(quantizedWith: nil)), "\(format): measured as if quantized without the vector")
        }
    }

    @Test("statistics for another model are refused, naming the tensor, before anything is written")
    func mismatchedStatisticsAreRefused() throws {
        let quantizer = try ModelQuantizer(source: try GGUFFile.open(path: try TinyModels.path(Self.spec)))
        let formats = quantizer.uniformFormats(.q4_K)
        let hidden = Self.spec.hidden
        var statistics = try statistics()
        statistics.meanSquares["blk.1.attn_k.weight"] = [Float](repeating: 1, count: hidden + 32)
        let out = temporaryPath("refused.gguf")
        let wrongLength = QuantizationRequestError.columnWeightCount(tensor: "blk.1.attn_k.weight", expected: hidden,
                                                                     found: hidden + 32)
        #expect(throws: wrongLength) {
            try quantizer.write(formats: formats, fileType: nil, notes: [], to: out, overwrite: false, statistics: statistics)
        }
        #expect(wrongLength.description.contains("blk.1.attn_k.weight") && wrongLength.description.contains("(\(hidden))")
                && wrongLength.description.contains("found \(hidden + 32)"), "\(wrongLength)")
        statistics.meanSquares["blk.1.attn_k.weight"] = nil
        statistics.meanSquares["blk.9.attn_k.weight"] = [Float](repeating: 1, count: hidden)
        #expect(throws: QuantizationRequestError.statisticsForUnknownTensor("blk.9.attn_k.weight")) {
            try quantizer.write(formats: formats, fileType: nil, notes: [], to: out, overwrite: false, statistics: statistics)
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("kind sensitivity: a pass per kind a type below and above the uniform one, its loss that of the written file")
    func kindSensitivityMeasuresWhatTheWrittenFileLoses() throws {
        let sourcePath = try TinyModels.path(Self.spec)
        let quantizer = try ModelQuantizer(source: try GGUFFile.open(path: sourcePath))
        let statistics = try statistics()
        let model = try TinyModels.model(Self.spec)
        let tokens = model.tokenizer.encode(String(repeating: TinyVocabulary.corpus, count: 2), addSpecial: false)
        let windows = try CalibrationSet(tokens: tokens, context: 64, windows: 2)
        let pool = WorkerPool(threadCount: 2)
        let measurements = try MeasuredMix.measure(quantizer: quantizer, columnWeights: statistics.meanSquares, pool: pool)
        var passes: [String] = []
        let sensitivity = try KindSensitivity.measure(
            quantizer: quantizer, measurements: measurements, around: .q3_K, statistics: statistics, calibration: windows,
            numerics: .exact, pool: pool) { _, _, name in passes.append(name) }
        let kinds = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        #expect(Set(sensitivity.trials.map(\.kind)) == Set(kinds) && sensitivity.trials.count == 2 * kinds.count)
        #expect(passes.count == 2 * kinds.count + 1 && passes.first == "baseline")
        #expect(sensitivity.trials.allSatisfy { trial in
            trial.tensors == Self.spec.layers && trial.from == "Q3_K" && trial.to == (trial.offset < 0 ? "Q2_K" : "Q4_K")
        }, "\(sensitivity.trials)")
        // the losses of files written to disk and loaded as any model is, through the statistics
        // pass over the same windows
        func writtenLoss(_ formats: [String: QuantFormat], _ name: String) throws -> Double {
            let path = temporaryPath(name)
            defer { try? FileManager.default.removeItem(atPath: path) }
            _ = try quantizer.write(formats: formats, fileType: nil, notes: [], to: path, overwrite: false, statistics: statistics)
            var transformer = Transformer(model: try LanguageModel(path: path), pool: pool, numerics: .exact)
            return log(try ActivationStatistics.collect(transformer: &transformer, calibration: windows).perplexity)
        }
        var uniform = Dictionary(uniqueKeysWithValues: measurements.tensors.map { ($0.name, QuantFormat.q3_K) })
        let baseline = try writtenLoss(uniform, "uniform.gguf")
        #expect(abs(sensitivity.baselineLoss - baseline) < 1e-9, "\(sensitivity.baselineLoss) against \(baseline)")
        for tensor in measurements.tensors where tensor.name.hasSuffix(".ffn_down.weight") { uniform[tensor.name] = .q2_K }
        let down = try #require(sensitivity.trials.first { $0.kind == "ffn_down" && $0.offset == -1 })
        let lowered = try writtenLoss(uniform, "down.gguf")
        #expect(abs(lowered - baseline - down.lossChange) < 1e-9, "written \(lowered - baseline), measured \(down.lossChange)")
        #expect(down.lossChange > 0, "\(down)")
        // the mix's candidates are the three measured types, the baseline's cost zero
        let estimated = sensitivity.estimates(measurements.tensors)
        #expect(estimated.allSatisfy { $0.formats == [.q2_K, .q3_K, .q4_K] && $0.errors[1] == 0 })
        let downEstimates = estimated.filter { $0.name.hasSuffix(".ffn_down.weight") }.map { $0.errors[0] }
        #expect(downEstimates.allSatisfy { abs($0 - down.lossChange / Double(Self.spec.layers)) < 1e-15 }, "\(downEstimates)")
        // the unquantized candidates a kind-sensitivity mix starts from are the measured ones
        let listed = MeasuredMix.typeChoices(quantizer: quantizer).tensors
        #expect(listed.map(\.name) == measurements.tensors.map(\.name))
        #expect(listed.map(\.formats) == measurements.tensors.map(\.formats) && listed.map(\.bits) == measurements.tensors.map(\.bits))
    }
}
