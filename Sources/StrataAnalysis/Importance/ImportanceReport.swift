import Foundation
import StrataEngine

/// Per-layer importance measurements of one model on a calibration text (see
/// `docs/methods.md`, section 1). Arrays are indexed by layer; metrics that were not
/// measured are empty arrays (or nil for `perplexityFull`).
public struct ImportanceReport: Sendable, Codable, Equatable {
    /// The model's name or path.
    public var model: String
    public var layerCount: Int
    /// Calibration windows and tokens per window.
    public var windows: Int
    public var context: Int
    /// What the calibration text was (a file path, or the bundled passage's name).
    public var text: String
    /// `1 - mean_t cos(h_l[t], h_{l+1}[t])` over every token of every window [ShortGPT].
    public var blockInfluence: [Double]
    /// `[layer][n - 1]`: `arccos(cos(h_l[T], h_{l+n}[T])) / pi` at each window's last token T,
    /// averaged over windows, for n = 1...L/2; nil where l + n > L.
    public var angularDistance: [[Double?]]
    /// `-mean_t cos(h_l[t], h_{l+1}[t])` [Layer-Wise Quantization, LIM].
    public var lim: [Double]
    /// Fraction of the layer's matrix weights whose z-score magnitude exceeds 1, with the
    /// z-score taken over each matrix on its own (its mean and standard deviation) and the
    /// fraction pooled over all seven matrices of the layer [Layer-Wise Quantization, ZD].
    public var zd: [Double]
    /// Mean over tokens of `||attention output|| / ||stream entering the attention||`.
    public var attentionContribution: [Double]
    /// Mean over tokens of `||FFN output|| / ||stream entering the FFN||`.
    public var ffnContribution: [Double]
    /// Logit lens: final norm + LM head on the layer's output; how often its argmax equals the
    /// full model's, over the sampled positions.
    public var logitLensAgreement: [Double]
    /// Logit lens: mean KL(full model || lens) in nats over the sampled positions.
    public var logitLensKL: [Double]
    /// Positions per window the logit lens was measured at (evenly spaced, last included).
    public var logitLensPositions: Int
    /// Perplexity of the calibration windows with the full model.
    public var perplexityFull: Double?
    /// Perplexity with layer l removed entirely.
    public var perplexityWithoutLayer: [Double]
    /// Perplexity with only layer l's attention sublayer removed.
    public var perplexityWithoutAttention: [Double]
    /// Perplexity with only layer l's feed-forward sublayer removed.
    public var perplexityWithoutFFN: [Double]
    /// Wall-clock seconds the analysis took.
    public var seconds: Double
    /// Positions a sliding-window layer attends to, nil when the model has no such layers.
    public var slidingWindow: Int?
    /// Per layer, whether its attention slides (Gemma 3), nil when no layer does.
    public var slidingWindowLayers: [Bool]?
    /// The training-free tuned lens (maps fitted to the last layer's stream), measured on the
    /// last calibration window with the maps fitted on the others; nil when not measured.
    public var tunedLens: TunedLensResult? = nil

    enum CodingKeys: String, CodingKey {
        case model, windows, context, text, lim, zd, seconds
        case layerCount = "layer_count"
        case blockInfluence = "block_influence"
        case angularDistance = "angular_distance"
        case attentionContribution = "attention_contribution"
        case ffnContribution = "ffn_contribution"
        case logitLensAgreement = "logit_lens_agreement"
        case logitLensKL = "logit_lens_kl"
        case logitLensPositions = "logit_lens_positions"
        case perplexityFull = "perplexity_full"
        case perplexityWithoutLayer = "perplexity_without_layer"
        case perplexityWithoutAttention = "perplexity_without_attention"
        case perplexityWithoutFFN = "perplexity_without_ffn"
        case slidingWindow = "sliding_window"
        case slidingWindowLayers = "sliding_window_layers"
        case tunedLens = "tuned_lens"
    }

    /// Reads a report written by `write(to:)` (or `strata analyze --json`).
    public static func load(path: String) throws -> ImportanceReport {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvaluationError.invalidArgument("cannot read analysis file \(path)")
        }
        let report: ImportanceReport
        do {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .namedNonFinite
            report = try decoder.decode(ImportanceReport.self, from: data)
        } catch {
            throw EvaluationError.invalidArgument("\(path) is not an analysis report (strata analyze --json): \(error)")
        }
        if let problem = report.shapeProblem {
            throw EvaluationError.invalidArgument("\(path) is not a consistent analysis report: \(problem)")
        }
        return report
    }

    /// What makes a decoded report unusable (tables and charts index every per-layer list by
    /// layer), or nil.
    var shapeProblem: String? {
        let most = LayerPlan.largestLayerIndex + 1
        guard (1...most).contains(layerCount) else { return "layer_count is \(layerCount), expected 1...\(most)" }
        guard windows >= 0, context >= 0, logitLensPositions >= 0 else {
            return "windows, context and logit_lens_positions must not be negative"
        }
        let perLayer: [(String, Int)] = [
            ("block_influence", blockInfluence.count), ("lim", lim.count), ("zd", zd.count),
            ("attention_contribution", attentionContribution.count), ("ffn_contribution", ffnContribution.count),
            ("logit_lens_agreement", logitLensAgreement.count), ("logit_lens_kl", logitLensKL.count),
            ("perplexity_without_layer", perplexityWithoutLayer.count),
            ("perplexity_without_attention", perplexityWithoutAttention.count),
            ("perplexity_without_ffn", perplexityWithoutFFN.count),
        ]
        if let (name, count) = perLayer.first(where: { $0.1 != 0 && $0.1 != layerCount }) {
            return "\(name) has \(count) entries, expected \(layerCount) (one per layer) or none"
        }
        if let lens = tunedLens, [lens.agreement, lens.divergence, lens.plainAgreement, lens.plainDivergence].contains(where: { $0.count != layerCount }) {
            return "tuned_lens lists must have \(layerCount) entries (one per layer)"
        }
        if let flags = slidingWindowLayers, flags.count != layerCount {
            return "sliding_window_layers has \(flags.count) entries, expected \(layerCount) (one per layer)"
        }
        return nil
    }

    /// The report as pretty, key-sorted JSON (nil angular entries are written as null).
    public func jsonData() throws -> Data {
        try JSONEncoder.forReports().encode(self)
    }
}
