import StrataKernels

/// Which importance score orders the layers of a layer-wise mix.
public enum ImportanceScore: String, CaseIterable, Sendable {
    /// Perplexity with the layer removed (measured; the most direct score).
    case removal
    /// Block Influence: how much the layer turns the residual stream [ShortGPT].
    case blockInfluence = "block-influence"
    /// Layer input modification, `-cos(h_l, h_{l+1})` [Layer-Wise Quantization].
    case lim
    /// Fraction of weights with |z| > 1; more outliers count as LESS important [Layer-Wise Quantization].
    case zd

    /// One importance per layer, higher = more important, from `report`.
    public func values(in report: ImportanceReport) -> [Double] {
        switch self {
        case .removal: report.perplexityWithoutLayer
        case .blockInfluence: report.blockInfluence
        case .lim: report.lim
        case .zd: report.zd.map { -$0 }
        }
    }
}

/// One quantization type per layer that meets a bits-per-weight budget, giving the higher of
/// two types to the layers an importance score ranks highest (the scheme of Layer-Wise
/// Quantization). With `spread` 1 every layer gets the largest type the budget allows for all,
/// and the most important layers the next type up until the budget is spent; with `spread` 2
/// the two types are one below and one above that (Q3_K and Q5_K around a Q4_K budget), so a
/// mix can match a uniform type's size and still spend its bits by importance. `reverse` hands
/// the higher type to the least important layers instead, the control experiment.
public struct LayerWiseMix: Sendable {
    /// The types a layer can take, fewest bits first.
    public static let ladder: [QuantFormat] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_0]

    /// The type of each layer (before a tensor's row width forces a block-32 fallback).
    public var layerFormats: [QuantFormat]
    /// Every weight tensor's type.
    public var formats: [String: QuantFormat]
    /// Bits per layer weight reached.
    public var bitsPerWeight: Double

    /// Bits per layer weight when every layer takes `format` (with the row-width fallbacks):
    /// the budget at which a mix is the same size as that uniform type.
    public static func bitsPerWeight(quantizer: ModelQuantizer, uniform format: QuantFormat) -> Double {
        quantizer.layerBitsPerWeight(quantizer.uniformFormats(format)).target
    }

    /// Chooses the types for `quantizer`'s model: `importance[l]` ranks layer `l` (higher is
    /// more important), `budget` is bits per layer weight. Tensors outside the layers take
    /// `outside`'s types (by default Q4_K_M's: Q6_K or Q8_0 for the output matrix).
    public init(quantizer: ModelQuantizer, importance: [Double], budget: Double, reverse: Bool = false,
                spread: Int = 1, outside: QuantizationPreset = .q4_K_M) throws {
        precondition(spread >= 1, "a spread of at least one ladder step")
        let layerCount = quantizer.shape.layerCount
        guard importance.count == layerCount else {
            throw QuantizationRequestError.importanceMismatch(report: importance.count, model: layerCount)
        }
        let tensors = quantizer.quantizedTensors
        let outsideFormats = quantizer.formats(preset: outside)
        // bits of each layer at each ladder step, with the row-width fallbacks
        var layerBits = [[Int]](repeating: [Int](repeating: 0, count: Self.ladder.count), count: layerCount)
        var layerElements = 0
        for tensor in tensors {
            guard let layer = TensorRole.layer(of: tensor.name), layer < layerCount else { continue }
            layerElements += tensor.elementCount
            for (step, format) in Self.ladder.enumerated() {
                let fitted = QuantizationPreset.fitting(format, columns: tensor.shape[0])
                layerBits[layer][step] += (fitted.byteCount(elements: tensor.elementCount) ?? 0) * 8
            }
        }
        let allowed = budget * Double(max(1, layerElements))
        func total(_ steps: [Int]) -> Int { steps.enumerated().reduce(0) { $0 + layerBits[$1.offset][$1.element] } }
        try QuantizationRequestError.checkBudget(budget, smallestBits: total([Int](repeating: 0, count: layerCount)),
                                                 elements: layerElements,
                                                 sourceBitsPerWeight: quantizer.layerBitsPerWeight([:]).source)
        var base = 0
        while base + 1 < Self.ladder.count && Double(total([Int](repeating: base + 1, count: layerCount))) <= allowed {
            base += 1
        }
        let low = max(0, base - (spread - 1))
        let high = min(Self.ladder.count - 1, low + spread)
        var steps = [Int](repeating: low, count: layerCount)
        if high > low {
            // ties keep layer order, so the choice is the same on every run
            let order = importance.indices.sorted {
                importance[$0] != importance[$1] ? importance[$0] > importance[$1] : $0 < $1
            }
            for layer in reverse ? Array(order.reversed()) : order {
                steps[layer] = high
                if Double(total(steps)) > allowed { steps[layer] = low }
            }
        }
        layerFormats = steps.map { Self.ladder[$0] }
        var formats = outsideFormats
        for tensor in tensors {
            guard let layer = TensorRole.layer(of: tensor.name), layer < layerCount else { continue }
            formats[tensor.name] = QuantizationPreset.fitting(Self.ladder[steps[layer]], columns: tensor.shape[0])
        }
        self.formats = formats
        bitsPerWeight = Double(total(steps)) / Double(max(1, layerElements))
    }
}
