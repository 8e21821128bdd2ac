import Foundation
import StrataEngine

/// Static plan builders: each turns scores (or nothing, for unified) and a removal count into
/// a `LayerPlan` that records its method and what it removed.
public enum PlanBuilders {
    /// The `count` layers with the lowest Block Influence [ShortGPT]; ties go to the earlier layer.
    public static func lowestBlockInfluence(_ scores: [Double], count: Int) -> LayerPlan {
        let removed = lowest(scores, count: count)
        return plan(layers: scores.count, removingLayers: removed, method: .blockInfluence,
                    notes: "removed layers " + list(removed, scores: scores, label: "block influence"))
    }

    /// The block `l*..l*+count-1` with the smallest mean angular distance `d(l*, count)`
    /// (`distances[l][n - 1]`, nil where undefined); ties go to the earlier block.
    public static func angularBlock(_ distances: [[Double?]], count: Int) throws(PlanBuildError) -> LayerPlan {
        var best: (layer: Int, distance: Double)?
        for (layer, row) in distances.enumerated() where count - 1 < row.count && layer + count <= distances.count {
            guard let distance = row[count - 1] else { continue }
            if best == nil || distance < best!.distance { best = (layer, distance) }
        }
        guard let best else { throw .missingScores(method: .angular, metric: "angular_distance for n = \(count)") }
        let removed = Array(best.layer..<(best.layer + count))
        return plan(layers: distances.count, removingLayers: removed, method: .angular,
                    notes: String(format: "removed layers %d-%d, the block with the smallest angular distance d(%d, %d) = %.4f",
                                  removed.first!, removed.last!, best.layer, count, best.distance))
    }

    /// Skips `count` of the intermediate layers `1...L-2`, spread evenly (the centre of each
    /// of `count` equal stretches), keeping the first and last layers [Unified Layer Skipping].
    public static func unified(layers: Int, count: Int) -> LayerPlan {
        let intermediate = layers - 2
        let removed = (0..<count).map { 1 + (2 * $0 + 1) * intermediate / (2 * count) }
        return plan(layers: layers, removingLayers: removed, method: .unified,
                    notes: "removed layers \(removed.map(String.init).joined(separator: ", ")), spread evenly between the first and last")
    }

    /// The `count` attention (or FFN) sublayers whose single removal gave the lowest perplexity.
    public static func lowestSublayers(_ perplexities: [Double], count: Int, method: PlanMethod) -> LayerPlan {
        let removed = Set(lowest(perplexities, count: count))
        // indices of the scores, one per layer: always layers of the model
        var plan = try! LayerPlan.full(layerCount: perplexities.count).skipping(
            attention: method == .attentionOnly ? removed : [], ffn: method == .ffnOnly ? removed : [])
        let sublayer = method == .attentionOnly ? "attention" : "FFN"
        plan.method = method.rawValue
        plan.notes = "removed the \(sublayer) sublayer of layers "
            + list(removed.sorted(), scores: perplexities, label: "perplexity without it")
        return plan
    }

    /// Indices of the `count` smallest scores, in layer order.
    static func lowest(_ scores: [Double], count: Int) -> [Int] {
        scores.indices.sorted { (scores[$0], $0) < (scores[$1], $1) }.prefix(count).sorted()
    }

    static func plan(layers: Int, removingLayers removed: [Int], method: PlanMethod, notes: String) -> LayerPlan {
        // every builder removes layers in 0..<layers (indices of its scores, blocks that fit, or
        // layers spread between the first and last)
        var plan = try! LayerPlan.full(layerCount: layers).skipping(layers: Set(removed))
        plan.method = method.rawValue
        plan.notes = notes
        return plan
    }

    static func list(_ indices: [Int], scores: [Double], label: String) -> String {
        indices.map { String(format: "%d", $0) }.joined(separator: ", ")
            + " (\(label): " + indices.map { String(format: "%.4g", scores[$0]) }.joined(separator: ", ") + ")"
    }
}

extension PlanMethod {
    /// How many units (layers or sublayers) `target` means for this method on a model whose
    /// sublayers cost `cost`; checks the range and says what is wrong. FinerCut's fraction
    /// targets are a compute budget instead (units differ in size): see `greedySublayerRemoval`.
    public func removalCount(_ target: RemovalTarget, cost: SublayerCost) throws(PlanBuildError) -> Int {
        let maximum = maximumRemovals(layers: cost.layerCount)
        switch target {
        case .count(let count):
            guard count >= 1, count <= maximum else { throw .invalidCount(method: self, count: count, maximum: maximum) }
            return count
        case .computeFraction(let fraction):
            guard fraction > 0, fraction < 1 else { throw .invalidFraction(fraction) }
            let unit: Double = switch self {
            case .blockInfluence, .angular, .unified: cost.layer
            case .attentionOnly: cost.attention
            case .ffnOnly: cost.feedForward
            case .finerCut: min(cost.attention, cost.feedForward)
            }
            // A hair of tolerance so that e.g. 0.1 of 30 layers is 3, not 2.9999.
            let count = Int((fraction * cost.total / unit + 1e-9).rounded(.down))
            guard count >= 1 else { throw .fractionTooSmall(fraction: fraction, smallestUnit: unit / cost.total) }
            guard count <= maximum || self == .finerCut else {
                throw .fractionTooLarge(method: self, fraction: fraction, maximum: Double(maximum) * unit / cost.total)
            }
            return min(count, maximum)
        }
    }
}
