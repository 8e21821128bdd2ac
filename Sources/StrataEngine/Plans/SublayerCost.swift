/// Parameter counts of one layer's sublayers: the unit of compute of every fraction Strata
/// reports (a plan's compute fraction, `--compute-fraction`, the analysis's progress). The one
/// place the per-token cost of a sublayer is written down.
public struct SublayerCost: Sendable, Equatable {
    /// Weights of q, k, v and o.
    public var attention: Double
    /// Weights of gate, up and down.
    public var feedForward: Double
    public var layerCount: Int

    public init(attention: Double, feedForward: Double, layerCount: Int) {
        self.attention = attention
        self.feedForward = feedForward
        self.layerCount = layerCount
    }

    public init(config: ModelConfig) {
        let queryWidth = config.headCount * config.headDimensions
        let kvWidth = config.kvHeadCount * config.headDimensions
        self.init(attention: Double(config.hiddenSize * (2 * queryWidth + 2 * kvWidth)),
                  feedForward: Double(3 * config.hiddenSize * config.feedForwardSize),
                  layerCount: config.layerCount)
    }

    /// Weights of one whole layer (both sublayers).
    public var layer: Double { attention + feedForward }

    /// All layers' weights.
    public var total: Double { Double(layerCount) * layer }

    /// Fraction of the full model's layer compute that `plan` runs.
    public func keptFraction(_ plan: LayerPlan) -> Double {
        let kept = plan.steps.reduce(0.0) { $0 + ($1.runsAttention ? attention : 0) + ($1.runsFFN ? feedForward : 0) }
        return kept / total
    }

    /// Fraction of layer compute that `plan` removes.
    public func removedFraction(_ plan: LayerPlan) -> Double { 1 - keptFraction(plan) }
}
