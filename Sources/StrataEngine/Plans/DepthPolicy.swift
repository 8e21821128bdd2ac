import StrataKernels
import StrataTokenizer

/// A per-token depth rule (lossy, opt-in): decides, for each token of a pass, which of its
/// plan's steps run, from what the token's own stream shows on the way (`docs/methods.md`
/// section 3). Carried by a `LayerPlan`, so every evaluation and decoding loop that runs a plan
/// runs the rule too; `Transformer.depthUsage` counts what ran.
///
/// A batched pass runs the same rule row by row and gives every row bitwise the logits that
/// token-by-token passes give (rows that skip a sublayer add nothing from it).
public enum DepthPolicy: Sendable, Equatable, Hashable {
    /// End a token's pass early when a shortcut prediction is confident (CALM).
    case dynamicExit(DynamicExit)
    /// Skip a token's FFN sublayers once its stream stops turning across them (FFN-SkipLLM).
    case feedForwardSkip(FeedForwardSkip)
}

/// Early exit by confidence with state propagation (CALM): after each step `depth - 1` that has
/// a map in `maps`, a still-running token's stream `h` is mapped to the last layer's
/// (`h · T_depth`), normalized and scored over the head's tokens; when the top probability is at
/// least `threshold`, the token leaves. Its logits are then the full output head's over `h · T`,
/// and the remaining steps run only the key and value projections of their attention on `h`,
/// so later tokens still find its entries in every layer's cache.
public struct DynamicExit: Sendable, Equatable, Hashable {
    /// Top probability (over the head's tokens) at or above which a token exits.
    public var threshold: Float
    /// Exit points: depth (steps run) to the stream map after them.
    public var maps: [Int: LinearMap]
    /// What scores the confidence: a head over frequent tokens (`Transformer.outputHead`),
    /// without a map (the map depends on the depth and is applied first).
    public var head: OutputHead

    public init(threshold: Float, maps: [Int: LinearMap], head: OutputHead) {
        self.threshold = threshold
        self.maps = maps
        self.head = head
    }

    /// The exit points, shallowest first.
    public var depths: [Int] { maps.keys.sorted() }

    public static func == (lhs: DynamicExit, rhs: DynamicExit) -> Bool {
        lhs.threshold == rhs.threshold && lhs.maps == rhs.maps && lhs.head.tokens == rhs.head.tokens
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(threshold)
        hasher.combine(depths)
        hasher.combine(head.tokens.count)
    }
}

/// Adaptive FFN skipping (FFN-SkipLLM): in steps whose layer is in `layers`, a token's FFN runs
/// and the cosine between its stream before and after the FFN is measured; from the first such
/// FFN whose cosine is at least `threshold` (the stream has saturated), the token skips every
/// later FFN in `layers`. Layers outside `layers` (the first and last, which change the stream
/// most) always run. Attention always runs, so every cache entry is the one the plan writes.
public struct FeedForwardSkip: Sendable, Equatable, Hashable {
    public var threshold: Float
    /// The layers whose FFN may be skipped.
    public var layers: Range<Int>

    public init(threshold: Float, layers: Range<Int>) {
        self.threshold = threshold
        self.layers = layers
    }

    /// The middle of a model of `layerCount` layers: all but the first quarter and the last eighth.
    public static func defaultLayers(layerCount: Int) -> Range<Int> {
        let first = layerCount / 4
        let last = layerCount - (layerCount + 7) / 8
        return first..<max(first, last)
    }
}

/// What per-token depth rules ran, summed over the tokens of one or more passes.
public struct DepthUsage: Sendable, Equatable, Codable {
    /// Token rows processed.
    public var tokens = 0
    /// Attention sublayers run in full, over all tokens.
    public var attentionRuns = 0
    /// Attention sublayers of exited tokens that ran only their key and value projections.
    public var keyValueFills = 0
    /// FFN sublayers run, over all tokens.
    public var feedForwardRuns = 0
    /// Exit checks (map and confidence head), over all tokens.
    public var exitChecks = 0
    /// Tokens that left before the last step.
    public var exits = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case tokens, exits
        case attentionRuns = "attention_runs"
        case keyValueFills = "key_value_fills"
        case feedForwardRuns = "ffn_runs"
        case exitChecks = "exit_checks"
    }

    /// Fraction of the full model's layer compute (`SublayerCost`) these tokens ran: sublayers
    /// run in full, plus the key and value projections of state propagation. Counted per token,
    /// as token-by-token decoding runs them: a batched pass computes a sublayer for all its rows
    /// when any row needs it, and discards it for the others, so only decoding saves the time.
    public func computeFraction(config: ModelConfig) -> Double {
        guard tokens > 0 else { return 0 }
        let cost = SublayerCost(config: config)
        let keyValue = Double(2 * config.hiddenSize * config.kvHeadCount * config.headDimensions)
        let ran = Double(attentionRuns) * cost.attention + Double(feedForwardRuns) * cost.feedForward
            + Double(keyValueFills) * keyValue
        return ran / (Double(tokens) * cost.total)
    }

    /// The exit checks' cost in the same unit: per check, one `hidden × hidden` map and a head
    /// of `vocabulary` rows.
    public func checkFraction(config: ModelConfig, vocabulary: Int) -> Double {
        guard tokens > 0 else { return 0 }
        let perCheck = Double(config.hiddenSize * (config.hiddenSize + vocabulary))
        return Double(exitChecks) * perCheck / (Double(tokens) * SublayerCost(config: config).total)
    }

    /// Mean layers (attention and FFN together, by weight) run per token.
    public func layersPerToken(config: ModelConfig) -> Double {
        computeFraction(config: config) * Double(config.layerCount)
    }

    public static func + (lhs: DepthUsage, rhs: DepthUsage) -> DepthUsage {
        var sum = lhs
        sum.tokens += rhs.tokens
        sum.attentionRuns += rhs.attentionRuns
        sum.keyValueFills += rhs.keyValueFills
        sum.feedForwardRuns += rhs.feedForwardRuns
        sum.exitChecks += rhs.exitChecks
        sum.exits += rhs.exits
        return sum
    }
}
