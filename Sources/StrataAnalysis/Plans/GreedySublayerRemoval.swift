import Foundation
import StrataEngine

/// One removal chosen by the greedy search.
public struct SublayerRemoval: Sendable, Equatable, Codable {
    public var layer: Int
    /// `attention` or `ffn`.
    public var sublayer: Ablation
    /// Calibration perplexity after this and all earlier removals.
    public var perplexity: Double
}

/// FinerCut-style greedy sublayer removal: every round tries removing each remaining
/// attention and FFN sublayer on top of the removals so far, keeps the one that raises
/// calibration perplexity least, and measures again. Stops after `target` sublayers (or when
/// no remaining sublayer fits the compute budget of a fraction target).
///
/// Perplexity (the mean log-likelihood of the calibration tokens) is the measure of output
/// change: it needs no stored full-model distributions. Each candidate starts from the
/// residual stream the current plan has entering that layer, as recorded once per round.
public func greedySublayerRemoval(
    transformer: inout Transformer, calibration: CalibrationSet, target: RemovalTarget,
    progress: ((AnalysisProgress) -> Void)? = nil
) throws -> (plan: LayerPlan, removals: [SublayerRemoval]) {
    let config = transformer.config
    let layers = config.layerCount
    let cost = SublayerCost(config: config)
    let rounds: Int
    var budget = Double.infinity
    switch target {
    case .count:
        rounds = try PlanMethod.finerCut.removalCount(target, cost: cost)
    case .computeFraction(let fraction):
        _ = try PlanMethod.finerCut.removalCount(target, cost: cost)
        budget = fraction * cost.total * (1 + 1e-9)
        rounds = 2 * layers - 1
    }
    func unitCost(_ sublayer: Ablation) -> Double { sublayer == .attention ? cost.attention : cost.feedForward }

    let clock = ContinuousClock()
    let start = clock.now
    // Every step stays in the plan while searching (a layer with both sublayers off is an
    // identity step), so step index == layer and recorded streams line up with candidates.
    var current = LayerPlan.full(layerCount: layers)
    var removals: [SublayerRemoval] = []
    var spent = 0.0
    var cache = transformer.makeCache(capacity: calibration.context)
    let predictions = Double(calibration.windows.count * calibration.predictionsPerWindow)
    for round in 0..<rounds {
        var candidates: [(layer: Int, sublayer: Ablation)] = []
        for layer in 0..<layers {
            if current.steps[layer].runsAttention { candidates.append((layer, .attention)) }
            if current.steps[layer].runsFFN { candidates.append((layer, .feedForward)) }
        }
        candidates.removeAll { spent + unitCost($0.sublayer) > budget }
        // At most 2L - 1 rounds, so one sublayer always remains to run.
        guard !candidates.isEmpty else { break }
        var sums = [Double](repeating: 0, count: candidates.count)
        for tokens in calibration.windows {
            let recorder = ResidualRecorder(measuresContributions: false)
            cache.truncate(to: 0)
            _ = try transformer.forward(tokens: tokens, startPosition: 0, plan: current, cache: &cache,
                                        observer: recorder, logits: .none)
            for (index, candidate) in candidates.enumerated() {
                let plan = current.with(candidate.layer, candidate.sublayer, running: false)
                cache.truncate(to: 0)
                let logits = try transformer.forward(hidden: recorder.inputs[candidate.layer], firstStep: candidate.layer,
                                                     startPosition: 0, plan: plan, cache: &cache, logits: .all)
                sums[index] += windowNegativeLogLikelihood(logits: logits, tokens: tokens)
            }
        }
        let best = sums.indices.min { (sums[$0], $0) < (sums[$1], $1) }!
        let chosen = candidates[best]
        current = current.with(chosen.layer, chosen.sublayer, running: false)
        spent += unitCost(chosen.sublayer)
        removals.append(SublayerRemoval(layer: chosen.layer, sublayer: chosen.sublayer, perplexity: exp(sums[best] / predictions)))
        if let progress {
            let done = budget.isFinite ? min(spent / budget, 1) : Double(round + 1) / Double(rounds)
            let elapsed = (clock.now - start).seconds
            progress(AnalysisProgress(
                activity: String(format: "removal %d: layer %d %@ (perplexity %.3f)", round + 1, chosen.layer,
                                 chosen.sublayer.rawValue, removals.last!.perplexity),
                fractionDone: done, secondsLeft: elapsed * (1 - done) / done))
        }
    }

    var plan = current
    plan.steps.removeAll { !$0.runsAttention && !$0.runsFFN }
    plan.method = PlanMethod.finerCut.rawValue
    plan.notes = "greedy sublayer removal by calibration perplexity, in order: "
        + removals.map { String(format: "layer %d %@ (%.3f)", $0.layer, $0.sublayer.rawValue, $0.perplexity) }
            .joined(separator: ", ")
    return (plan, removals)
}

extension LayerPlan {
    /// This plan with `sublayer` of every step running `layer` switched on or off.
    func with(_ layer: Int, _ sublayer: Ablation, running: Bool) -> LayerPlan {
        var plan = self
        for index in plan.steps.indices where plan.steps[index].layer == layer {
            switch sublayer {
            case .attention: plan.steps[index].runsAttention = running
            case .feedForward: plan.steps[index].runsFFN = running
            case .layer:
                plan.steps[index].runsAttention = running
                plan.steps[index].runsFFN = running
            }
        }
        return plan
    }
}
