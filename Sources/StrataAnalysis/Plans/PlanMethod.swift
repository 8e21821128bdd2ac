import Foundation
import StrataEngine

/// How `strata plan` chooses what to remove (`docs/methods.md`, sections 1-2).
public enum PlanMethod: String, Sendable, CaseIterable, Codable {
    /// Remove the layers with the lowest Block Influence [ShortGPT].
    case blockInfluence = "block-influence"
    /// Remove the contiguous block of n layers with the smallest angular distance d(l, n)
    /// [The Unreasonable Ineffectiveness of the Deeper Layers].
    case angular
    /// Keep the first and last layers, skip intermediate layers spread evenly [Unified Layer
    /// Skipping, "balanced"]. Needs no measurement.
    case unified
    /// Greedily remove one attention or FFN sublayer at a time, the one whose removal raises
    /// calibration perplexity least, re-measuring after each removal [FinerCut].
    case finerCut = "finercut"
    /// Remove the attention sublayers whose single removal raises perplexity least.
    case attentionOnly = "attention-only"
    /// Remove the FFN sublayers whose single removal raises perplexity least.
    case ffnOnly = "ffn-only"

    /// Whether `--remove N` counts sublayers (true) or whole layers.
    public var countsSublayers: Bool {
        switch self {
        case .blockInfluence, .angular, .unified: false
        case .finerCut, .attentionOnly, .ffnOnly: true
        }
    }

    /// The largest `--remove N` the method accepts on a model of `layers` layers.
    public func maximumRemovals(layers: Int) -> Int {
        switch self {
        case .blockInfluence: layers - 1
        case .angular: layers / 2  // the analysis measures d(l, n) up to n = L/2
        case .unified: max(layers - 2, 0)  // the first and last layers always stay
        case .finerCut: 2 * layers - 1
        case .attentionOnly, .ffnOnly: layers
        }
    }
}

/// How much to remove: a count of units, or a fraction of the layer compute.
public enum RemovalTarget: Sendable, Equatable {
    /// Layers (block-influence, angular, unified) or sublayers (finercut, attention-only,
    /// ffn-only).
    case count(Int)
    /// Fraction of the per-token layer compute to REMOVE, each sublayer weighted by its
    /// parameter count; the plan removes as much as fits without exceeding it.
    case computeFraction(Double)
}

/// Why a plan could not be built.
public enum PlanBuildError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidCount(method: PlanMethod, count: Int, maximum: Int)
    case invalidFraction(Double)
    case fractionTooSmall(fraction: Double, smallestUnit: Double)
    case fractionTooLarge(method: PlanMethod, fraction: Double, maximum: Double)
    case missingScores(method: PlanMethod, metric: String)
    case layerCountMismatch(analysis: Int, model: Int)

    public var description: String {
        switch self {
        case .invalidCount(let method, let count, let maximum):
            "--remove \(count) is out of range for \(method.rawValue): remove 1...\(maximum) "
                + (method.countsSublayers ? "sublayers" : "layers")
        case .invalidFraction(let fraction):
            "--compute-fraction \(fraction) must be between 0 and 1 (exclusive): the fraction of layer compute to remove"
        case .fractionTooSmall(let fraction, let unit):
            String(format: "--compute-fraction %g removes nothing: the smallest removable unit is %.1f%% of layer compute",
                   fraction, unit * 100)
        case .fractionTooLarge(let method, let fraction, let maximum):
            String(format: "--compute-fraction %g is more than %@ can remove (at most %.1f%% of layer compute)",
                   fraction, method.rawValue, maximum * 100)
        case .missingScores(let method, let metric):
            "\(method.rawValue) needs '\(metric)' scores, which the analysis does not contain"
        case .layerCountMismatch(let analysis, let model):
            "the analysis is for a model with \(analysis) layers, this model has \(model)"
        }
    }
}
