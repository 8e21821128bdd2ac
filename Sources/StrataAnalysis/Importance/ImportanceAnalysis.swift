import Foundation
import StrataEngine
import StrataTokenizer

/// A sublayer removal whose perplexity the analysis measures for every layer.
public enum Ablation: String, Sendable, CaseIterable, Codable {
    /// The whole layer (both sublayers).
    case layer
    case attention
    case feedForward = "ffn"

    /// The full plan with this ablation applied to `layer`.
    func plan(removing layer: Int, from full: LayerPlan) throws(PlanError) -> LayerPlan {
        switch self {
        case .layer: try full.skipping(layers: [layer])
        case .attention: try full.skipping(attention: [layer])
        case .feedForward: try full.skipping(ffn: [layer])
        }
    }
}

/// What `analyzeImportance` measures; the similarity metrics (block influence, angular
/// distance, LIM, contribution ratios) come from the one full pass and are always measured.
public struct ImportanceOptions: Sendable {
    /// Which single-sublayer removals to measure perplexity for (3 × L passes per window).
    public var ablations: [Ablation]
    /// Positions per window for the logit lens (0 = skip it). Each layer's lens costs one
    /// LM-head product per position, so the lens samples positions instead of using all.
    public var logitLensPositions: Int
    /// Whether to measure ZD (dequantizes every matrix once).
    public var measuresWeightOutliers: Bool
    /// Whether to fit and measure the tuned lens (`measureTunedLens`; needs two windows and
    /// logit-lens positions). Costs one pass per window and a `hidden × hidden` fit per layer.
    public var measuresTunedLens: Bool

    public init(
        ablations: [Ablation] = Ablation.allCases, logitLensPositions: Int = 64, measuresWeightOutliers: Bool = true,
        measuresTunedLens: Bool = false
    ) {
        self.ablations = ablations
        self.logitLensPositions = logitLensPositions
        self.measuresWeightOutliers = measuresWeightOutliers
        self.measuresTunedLens = measuresTunedLens
    }
}

/// How far the analysis has got, for a progress line.
public struct AnalysisProgress: Sendable {
    /// What is running now, e.g. "window 2/4: without layer 7 (attention)".
    public var activity: String
    /// Fraction of the estimated work done (0...1).
    public var fractionDone: Double
    /// Estimated seconds left, once anything has been measured.
    public var secondsLeft: Double?
}

/// Measures every per-layer importance metric of `docs/methods.md` section 1 on the
/// calibration windows, through the observer of the one forward pass.
///
/// Cost: per window one full pass (recording the residual stream), the logit lens, and one
/// pass per requested ablation. A pass that removes (part of) layer l starts from the recorded
/// stream entering layer l, because layers before l compute exactly what the full pass did;
/// on average it runs half the layers.
public func analyzeImportance(
    transformer: inout Transformer, calibration: CalibrationSet, modelName: String, textName: String,
    options: ImportanceOptions = ImportanceOptions(), progress: ((AnalysisProgress) -> Void)? = nil
) throws -> ImportanceReport {
    let clock = ContinuousClock()
    let start = clock.now
    let config = transformer.config
    let layers = config.layerCount
    let hiddenSize = config.hiddenSize
    let full = LayerPlan.full(layerCount: layers)
    let maximumSpan = layers / 2
    let context = calibration.context
    let windowCount = calibration.windows.count

    var cosineSums = [Double](repeating: 0, count: layers)
    var angularSums = [[Double]](repeating: [Double](repeating: 0, count: maximumSpan), count: layers)
    var attentionSums = [Double](repeating: 0, count: layers)
    var feedForwardSums = [Double](repeating: 0, count: layers)
    var lens = LogitLensAccumulator(layers: layers)
    var fullNegativeLogLikelihood = 0.0
    var ablationNegativeLogLikelihoods = [Ablation: [Double]]()
    for ablation in options.ablations { ablationNegativeLogLikelihoods[ablation] = [Double](repeating: 0, count: layers) }

    // Work in units of "one layer over one window"; the LM head counts as its share of weights.
    let layerWeights = SublayerCost(config: config).layer
    let head = Double(config.vocabularySize * config.hiddenSize) / layerWeights
    let lensWork = Double(layers) * head * Double(min(options.logitLensPositions, context)) / Double(context)
    let ablationWork = Double(options.ablations.count) * (0..<layers).reduce(0.0) { $0 + Double(layers - $1) + head }
    let totalWork = Double(windowCount) * (Double(layers) + head + lensWork + ablationWork)
    var workDone = 0.0
    func report(_ activity: String, adding work: Double) {
        workDone += work
        guard let progress else { return }
        let elapsed = (clock.now - start).seconds
        let fraction = min(workDone / totalWork, 1)
        progress(AnalysisProgress(
            activity: activity, fractionDone: fraction,
            secondsLeft: fraction > 0 ? elapsed * (1 - fraction) / fraction : nil))
    }

    var cache = transformer.makeCache(capacity: context)
    for (windowIndex, tokens) in calibration.windows.enumerated() {
        let label = "window \(windowIndex + 1)/\(windowCount)"
        let recorder = ResidualRecorder()
        cache.truncate(to: 0)
        let logits = try transformer.forward(tokens: tokens, startPosition: 0, plan: full, cache: &cache,
                                             observer: recorder, logits: .all)
        recorder.finish()
        let states = recorder.inputs
        fullNegativeLogLikelihood += windowNegativeLogLikelihood(logits: logits, tokens: tokens)
        for layer in 0..<layers {
            for token in 0..<context {
                cosineSums[layer] += StreamMath.cosine(states[layer], states[layer + 1], row: token, width: hiddenSize)
            }
            for span in stride(from: 1, through: maximumSpan, by: 1) where layer + span <= layers {
                let cosine = StreamMath.cosine(states[layer], states[layer + span], row: context - 1, width: hiddenSize)
                angularSums[layer][span - 1] += acos(min(max(cosine, -1), 1)) / Double.pi
            }
            attentionSums[layer] += recorder.attentionRatios[layer]
            feedForwardSums[layer] += recorder.feedForwardRatios[layer]
        }
        report("\(label): full model", adding: Double(layers) + head)

        if options.logitLensPositions > 0 {
            try lens.measure(transformer: &transformer, states: states, fullLogits: logits,
                             positions: min(options.logitLensPositions, context))
            report("\(label): logit lens", adding: lensWork)
        }

        for ablation in options.ablations {
            for layer in 0..<layers {
                let plan = try ablation.plan(removing: layer, from: full)
                cache.truncate(to: 0)
                // The removed layer is step `layer` of the full plan, and the plan without it
                // runs the same steps before it: start there from the recorded stream.
                let ablated = try transformer.forward(hidden: states[layer], firstStep: layer, startPosition: 0,
                                                      plan: plan, cache: &cache, logits: .all)
                ablationNegativeLogLikelihoods[ablation]![layer] += windowNegativeLogLikelihood(logits: ablated, tokens: tokens)
                report("\(label): without layer \(layer + 1)/\(layers)\(ablation == .layer ? "" : " \(ablation.rawValue)")",
                       adding: Double(layers - layer) + head)
            }
        }
    }

    var tunedLens: TunedLensResult?
    if options.measuresTunedLens && windowCount >= 2 && options.logitLensPositions > 0 {
        tunedLens = try measureTunedLens(transformer: &transformer, calibration: calibration, positions: options.logitLensPositions,
                                         progress: progress.map { report in { report(AnalysisProgress(
                                             activity: "tuned lens: " + $0.activity, fractionDone: $0.fractionDone,
                                             secondsLeft: $0.secondsLeft)) } })
    }
    let tokenCount = Double(windowCount * context)
    let predictions = Double(windowCount * calibration.predictionsPerWindow)
    let blockInfluence = cosineSums.map { 1 - $0 / tokenCount }
    func perplexities(_ ablation: Ablation) -> [Double] {
        ablationNegativeLogLikelihoods[ablation].map { $0.map { exp($0 / predictions) } } ?? []
    }
    return ImportanceReport(
        model: modelName, layerCount: layers, windows: windowCount, context: context, text: textName,
        blockInfluence: blockInfluence,
        angularDistance: (0..<layers).map { layer in
            stride(from: 1, through: maximumSpan, by: 1).map { span in
                layer + span <= layers ? angularSums[layer][span - 1] / Double(windowCount) : nil
            }
        },
        lim: cosineSums.map { -$0 / tokenCount },
        zd: options.measuresWeightOutliers ? transformer.model.weights.layers.map(weightOutlierFraction) : [],
        attentionContribution: attentionSums.map { $0 / Double(windowCount) },
        ffnContribution: feedForwardSums.map { $0 / Double(windowCount) },
        logitLensAgreement: options.logitLensPositions > 0 ? lens.agreement : [],
        logitLensKL: options.logitLensPositions > 0 ? lens.meanDivergence : [],
        logitLensPositions: options.logitLensPositions > 0 ? min(options.logitLensPositions, context) : 0,
        perplexityFull: exp(fullNegativeLogLikelihood / predictions),
        perplexityWithoutLayer: perplexities(.layer),
        perplexityWithoutAttention: perplexities(.attention),
        perplexityWithoutFFN: perplexities(.feedForward),
        seconds: (clock.now - start).seconds,
        slidingWindow: transformer.config.slidingWindow,
        slidingWindowLayers: transformer.config.slidingWindowLayers,
        tunedLens: tunedLens)
}

