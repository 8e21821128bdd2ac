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
    try greedySublayerRemoval(transformer: &transformer, calibration: calibration, targets: [target], progress: progress)[0]
}

/// The greedy search for several targets at once, with the same result for each target as a
/// search for it alone, at the cost of little more than the largest one.
///
/// Searches that have made the same removals so far share one round of measurements: the
/// candidates that fit the largest of their budgets are measured once, and each search keeps
/// the best candidate that fits its own budget (the same one it would pick alone, since its
/// candidates are a subset measured identically and in the same order). Where their choices
/// differ the searches part and go on separately.
public func greedySublayerRemoval(
    transformer: inout Transformer, calibration: CalibrationSet, targets: [RemovalTarget],
    progress: ((AnalysisProgress) -> Void)? = nil
) throws -> [(plan: LayerPlan, removals: [SublayerRemoval])] {
    let config = transformer.config
    let layers = config.layerCount
    let cost = SublayerCost(config: config)
    func unitCost(_ sublayer: Ablation) -> Double { sublayer == .attention ? cost.attention : cost.feedForward }

    struct Search {
        var budget = Double.infinity
        var rounds: Int
        // Every step stays in the plan while searching (a layer with both sublayers off is an
        // identity step), so step index == layer and recorded streams line up with candidates.
        var current: LayerPlan
        var removals: [SublayerRemoval] = []
        var spent = 0.0
        var finished = false
        func fits(_ cost: Double) -> Bool { spent + cost <= budget }
    }
    var searches = try targets.map { target in
        var search = Search(rounds: 2 * layers - 1, current: .full(layerCount: layers))
        switch target {
        case .count:
            search.rounds = try PlanMethod.finerCut.removalCount(target, cost: cost)
        case .computeFraction(let fraction):
            _ = try PlanMethod.finerCut.removalCount(target, cost: cost)
            search.budget = fraction * cost.total * (1 + 1e-9)
        }
        return search
    }
    func fractionDone() -> Double {
        searches.reduce(0.0) { total, search in
            total + (search.finished ? 1 : search.budget.isFinite ? min(search.spent / search.budget, 1)
                                                               : Double(search.removals.count) / Double(search.rounds))
        } / Double(max(searches.count, 1))
    }

    let clock = ContinuousClock()
    let start = clock.now
    var cache = transformer.makeCache(capacity: calibration.context)
    let predictions = Double(calibration.windows.count * calibration.predictionsPerWindow)
    while let leader = searches.firstIndex(where: { !$0.finished }) {
        // The searches that have made exactly the leader's removals share this round.
        let members = searches.indices.filter { !searches[$0].finished && searches[$0].removals == searches[leader].removals }
        let current = searches[leader].current
        let widest = members.map { searches[$0].budget }.max()!
        var candidates: [(layer: Int, sublayer: Ablation)] = []
        for layer in 0..<layers {
            if current.steps[layer].runsAttention { candidates.append((layer, .attention)) }
            if current.steps[layer].runsFFN { candidates.append((layer, .feedForward)) }
        }
        candidates.removeAll { searches[leader].spent + unitCost($0.sublayer) > widest }
        // At most 2L - 1 rounds, so one sublayer always remains to run.
        guard !candidates.isEmpty else {
            for member in members { searches[member].finished = true }
            continue
        }
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
        for member in members {
            let fitting = candidates.indices.filter { searches[member].fits(unitCost(candidates[$0].sublayer)) }
            guard let best = fitting.min(by: { (sums[$0], $0) < (sums[$1], $1) }) else {
                searches[member].finished = true
                continue
            }
            let chosen = candidates[best]
            searches[member].current = current.with(chosen.layer, chosen.sublayer, running: false)
            searches[member].spent += unitCost(chosen.sublayer)
            searches[member].removals.append(
                SublayerRemoval(layer: chosen.layer, sublayer: chosen.sublayer, perplexity: exp(sums[best] / predictions)))
            if searches[member].removals.count >= searches[member].rounds { searches[member].finished = true }
        }
        if let progress, let last = searches[leader].removals.last {
            let done = fractionDone()
            let elapsed = (clock.now - start).seconds
            progress(AnalysisProgress(
                activity: String(format: "removal %d: layer %d %@ (perplexity %.3f)", searches[leader].removals.count, last.layer,
                                 last.sublayer.rawValue, last.perplexity),
                fractionDone: done, secondsLeft: done > 0 ? elapsed * (1 - done) / done : nil))
        }
    }

    return searches.map { search in
        var plan = search.current
        plan.steps.removeAll { !$0.runsAttention && !$0.runsFFN }
        plan.method = PlanMethod.finerCut.rawValue
        plan.notes = "greedy sublayer removal by calibration perplexity, in order: "
            + search.removals.map { String(format: "layer %d %@ (%.3f)", $0.layer, $0.sublayer.rawValue, $0.perplexity) }
                .joined(separator: ", ")
        return (plan, search.removals)
    }
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
