import StrataEngine
import StrataTokenizer

/// What dynamic-exit plans of one model share: a shortcut map after each exit depth, fitted on
/// calibration text, and the head that scores their confidence over the most frequent tokens.
/// One fit serves every threshold (`plan(threshold:)`).
public struct DynamicExitFit: Sendable {
    /// Depth (layers run) to the stream map after them.
    public var maps: [Int: LinearMap]
    public var head: OutputHead
    public var layerCount: Int
    /// Calibration rows each map was fitted on, and the fit's wall time.
    public var rows: Int
    public var seconds: Double

    /// The full model with a dynamic exit at `threshold`.
    public func plan(threshold: Float) -> LayerPlan {
        var plan = LayerPlan.full(layerCount: layerCount)
        plan.method = "dynamic-exit"
        plan.notes = "exit when the shortcut prediction's top probability over \(head.tokens.count) tokens reaches \(threshold)"
        plan.depth = .dynamicExit(DynamicExit(threshold: threshold, maps: maps, head: head))
        return plan
    }
}

/// Fits the maps of a dynamic exit at every `interval`-th depth from `minimumDepth` on, below
/// the last layer (`fitShortcutMaps`, float64 ridge, deterministic), and builds a confidence head over
/// the `vocabulary` tokens most frequent in `windows` (then in id order).
public func fitDynamicExits(
    transformer: inout Transformer, windows: [[TokenID]], minimumDepth: Int, interval: Int = 1, vocabulary: Int,
    progress: ((AnalysisProgress) -> Void)? = nil
) throws -> DynamicExitFit {
    let config = transformer.config
    guard (1..<config.layerCount).contains(minimumDepth) else {
        throw EvaluationError.invalidArgument(
            "the first exit must come after 1...\(config.layerCount - 1) layers, found \(minimumDepth)")
    }
    guard vocabulary >= 1 else { throw EvaluationError.invalidArgument("the exit vocabulary must be at least 1 token") }
    guard interval >= 1 else { throw EvaluationError.invalidArgument("the exit interval must be at least 1 layer") }
    let depths = Array(stride(from: minimumDepth, to: config.layerCount, by: interval))
    let fitted = try fitShortcutMaps(transformer: &transformer, windows: windows, depths: depths, progress: progress)
    var maps: [Int: LinearMap] = [:]
    for depth in depths {
        guard let values = fitted.maps[depth] else { continue }
        maps[depth] = LinearMap(name: "exit.\(depth)", site: .stream, map: values, width: config.hiddenSize)
    }
    let ranked = ShortcutDraftFit.tokensByFrequency(windows.flatMap { $0 }, vocabularySize: config.vocabularySize)
    let head = try transformer.outputHead(tokens: Array(ranked.prefix(vocabulary)))
    return DynamicExitFit(maps: maps, head: head, layerCount: config.layerCount, rows: fitted.rows, seconds: fitted.seconds)
}

/// The full model with adaptive FFN skipping at `threshold` over `layers` (default: the middle,
/// `FeedForwardSkip.defaultLayers`).
public func feedForwardSkipPlan(layerCount: Int, threshold: Float, layers: Range<Int>? = nil) -> LayerPlan {
    let layers = layers ?? FeedForwardSkip.defaultLayers(layerCount: layerCount)
    var plan = LayerPlan.full(layerCount: layerCount)
    plan.method = "ffn-skip"
    plan.notes = "skip the FFNs of layers \(layers.lowerBound)-\(layers.upperBound - 1) after the stream's cosine across one reaches \(threshold)"
    plan.depth = .feedForwardSkip(FeedForwardSkip(threshold: threshold, layers: layers))
    return plan
}

/// The threshold at which a per-token depth rule runs `target` of the full model's layer compute
/// on `windows`, found by bisection over 0...1 (`steps` halvings): a higher threshold exits or
/// skips less, so compute rises with it. Returns the threshold whose measured compute is
/// nearest the target among those tried, with that compute.
public func thresholdMatching(
    computeFraction target: Double, transformer: inout Transformer, windows: [[TokenID]], steps: Int = 12,
    plan: (Float) -> LayerPlan
) throws -> (threshold: Float, computeFraction: Double) {
    let config = transformer.config
    func measure(_ threshold: Float) throws -> Double {
        transformer.depthUsage = DepthUsage()
        let candidate = plan(threshold)
        for window in windows {
            var cache = transformer.makeCache(capacity: window.count)
            _ = try transformer.forward(tokens: window, startPosition: 0, plan: candidate, cache: &cache, logits: .none)
        }
        return transformer.depthUsage.computeFraction(config: config)
    }
    var low: Float = 0, high: Float = 1
    var best = (threshold: high, computeFraction: try measure(high))
    for _ in 0..<steps {
        let middle = (low + high) / 2
        let compute = try measure(middle)
        if abs(compute - target) < abs(best.computeFraction - target) { best = (middle, compute) }
        if compute < target { low = middle } else { high = middle }
    }
    transformer.depthUsage = DepthUsage()
    return best
}
