import Foundation
import StrataAnalysis
import StrataEngine
import StrataTestSupport
import Testing

/// transformers' layer study of SmolLM2-135M: on 4 windows of 512 tokens
/// (`Fixtures/hf-smollm2-135m-layers.json`, the full tier) or on one window of 256
/// (`Fixtures/hf-smollm2-135m-layers-reduced.json`, made by `Fixtures/make_layer_references.py`
/// with the same producer and rules; the default tier).
struct LayerReference: Decodable {
    struct Layers: Decodable {
        struct Angular: Decodable { let values: [[Double?]] }
        let layerCount: Int
        let windows: Int
        let context: Int
        let blockInfluence: [Double]
        let angularDistance: Angular
        let perplexityFull: Double
        let perplexityWithoutLayer: [Double]
        enum CodingKeys: String, CodingKey {
            case windows, context
            case layerCount = "layer_count"
            case blockInfluence = "block_influence"
            case angularDistance = "angular_distance"
            case perplexityFull = "perplexity_full"
            case perplexityFullFourWindows = "perplexity_full_4_windows"
            case perplexityWithoutLayer = "perplexity_without_layer"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            layerCount = try container.decode(Int.self, forKey: .layerCount)
            windows = try container.decode(Int.self, forKey: .windows)
            context = try container.decode(Int.self, forKey: .context)
            blockInfluence = try container.decode([Double].self, forKey: .blockInfluence)
            angularDistance = try container.decode(Angular.self, forKey: .angularDistance)
            perplexityFull = try container.decodeIfPresent(Double.self, forKey: .perplexityFull)
                ?? container.decode(Double.self, forKey: .perplexityFullFourWindows)
            perplexityWithoutLayer = try container.decode([Double].self, forKey: .perplexityWithoutLayer)
        }
    }
    let layers: Layers

    /// The study this tier checks against: 4 windows of 512 tokens in the full tier, 1 of 256 in
    /// the default.
    static func load() throws -> Layers {
        let name = TestTier.size(reduced: "hf-smollm2-135m-layers-reduced", full: "hf-smollm2-135m-layers")
        let url = try #require(Bundle.module.url(forResource: "Fixtures/" + name, withExtension: "json"))
        return try JSONDecoder().decode(LayerReference.self, from: Data(contentsOf: url)).layers
    }
}

/// Spearman rank correlation (average ranks for ties).
func spearman(_ a: [Double], _ b: [Double]) -> Double {
    func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var result = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
            for index in start...end { result[order[index]] = Double(start + end) / 2 }
            start = end + 1
        }
        return result
    }
    let (x, y) = (ranks(a), ranks(b))
    let meanX = x.reduce(0, +) / Double(x.count), meanY = y.reduce(0, +) / Double(y.count)
    var covariance = 0.0, varianceX = 0.0, varianceY = 0.0
    for (p, q) in zip(x, y) {
        covariance += (p - meanX) * (q - meanY)
        varianceX += (p - meanX) * (p - meanX)
        varianceY += (q - meanY) * (q - meanY)
    }
    return covariance / (varianceX * varianceY).squareRoot()
}

func maximumRelativeError(_ measured: [Double], _ reference: [Double]) -> (error: Double, index: Int) {
    zip(measured, reference).enumerated().map { (abs($1.0 - $1.1) / abs($1.1), $0) }.max { $0.0 < $1.0 } ?? (0, 0)
}

@Suite("Layer importance against transformers on SmolLM2-135M", .serialized)
struct ReferenceImportanceTests {
    /// One analysis (similarity metrics + single-layer removal) shared by the tests below:
    /// a full pass and 30 seeded removal passes per window, on as many windows as the reference.
    nonisolated(unsafe) static var cached: ImportanceReport?
    static let lock = NSLock()

    static func report() throws -> ImportanceReport {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let model = try LoadedModels.model("smollm2-135m")
        let reference = try LayerReference.load()
        let tokens = model.tokenizer.encode(CalibrationText.prideAndPrejudice, addSpecial: false, parseSpecial: false)
        #expect(tokens.count >= reference.windows * reference.context)
        let calibration = try CalibrationSet(tokens: tokens, context: reference.context, windows: reference.windows)
        var transformer = try PreparedModels.transformer("smollm2-135m", numerics: .exact)
        let start = Date()
        let report = try analyzeImportance(
            transformer: &transformer, calibration: calibration, modelName: "smollm2-135m", textName: "test",
            options: ImportanceOptions(ablations: [.layer], logitLensPositions: 0, measuresWeightOutliers: false))
        print(String(format: "analysis (BI, angular, 30 layer removals × %d windows of %d): %.1f s",
                     reference.windows, reference.context, Date().timeIntervalSince(start)))
        cached = report
        return report
    }

    @Test("Block Influence within 2% of transformers, same ranking")
    func blockInfluence() throws {
        let reference = try LayerReference.load()
        let measured = try Self.report().blockInfluence
        #expect(measured.count == reference.layerCount)
        let worst = maximumRelativeError(measured, reference.blockInfluence)
        print(String(format: "block influence: max relative error %.2e (layer %d), Spearman %.4f",
                     worst.error, worst.index, spearman(measured, reference.blockInfluence)))
        for (layer, (ours, theirs)) in zip(measured, reference.blockInfluence).enumerated() {
            #expect(abs(ours - theirs) <= 0.02 * abs(theirs), "layer \(layer): \(ours) vs \(theirs)")
        }
        #expect(spearman(measured, reference.blockInfluence) >= 0.95)
    }

    @Test("angular distances within 2% of transformers, null in the same places, same ranking")
    func angularDistance() throws {
        let reference = try LayerReference.load()
        let measured = try Self.report().angularDistance
        #expect(measured.count == reference.layerCount)
        var ours: [Double] = [], theirs: [Double] = []
        for (layer, (row, referenceRow)) in zip(measured, reference.angularDistance.values).enumerated() {
            #expect(row.count == referenceRow.count)
            for (span, (value, expected)) in zip(row, referenceRow).enumerated() {
                #expect((value == nil) == (expected == nil), "d(\(layer), \(span + 1))")
                guard let value, let expected else { continue }
                #expect(abs(value - expected) <= 0.02 * abs(expected), "d(\(layer), \(span + 1)): \(value) vs \(expected)")
                ours.append(value)
                theirs.append(expected)
            }
        }
        let worst = maximumRelativeError(ours, theirs)
        print(String(format: "angular distance: %d entries, max relative error %.2e, Spearman %.4f",
                     ours.count, worst.error, spearman(ours, theirs)))
        #expect(spearman(ours, theirs) >= 0.95)
    }

    @Test("perplexity with each layer removed within 2% of transformers, same ranking")
    func singleLayerRemoval() throws {
        let reference = try LayerReference.load()
        let report = try Self.report()
        let full = try #require(report.perplexityFull)
        // Same text and same model: the full perplexity agrees to the reference's precision.
        #expect(abs(full - reference.perplexityFull) < 1e-3, "\(full) vs \(reference.perplexityFull)")
        let measured = report.perplexityWithoutLayer
        #expect(measured.count == reference.layerCount)
        let worst = maximumRelativeError(measured, reference.perplexityWithoutLayer)
        print(String(format: "perplexity without layer: max relative error %.2e (layer %d), Spearman %.4f",
                     worst.error, worst.index, spearman(measured, reference.perplexityWithoutLayer)))
        for (layer, (ours, theirs)) in zip(measured, reference.perplexityWithoutLayer).enumerated() {
            #expect(abs(ours - theirs) <= 0.02 * theirs, "layer \(layer): \(ours) vs \(theirs)")
        }
        #expect(spearman(measured, reference.perplexityWithoutLayer) >= 0.95)
    }
}
