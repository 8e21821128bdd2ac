/// SWIFT-style search for a draft plan during generation (methods.md section 4): propose sets of
/// sublayers to skip, score each by matchness (how often the skipped model, fed the text that
/// was just verified, predicts the token the full model chose next), keep the best, and stop
/// once it is good or the evaluation budget is spent.
///
/// Proposals are a seed that skips both sublayers of every other middle layer (or a plan found
/// earlier), random sets, and a greedy walk that swaps one skipped sublayer for a kept one. The
/// first and last layers always run: removing them ruins any model (docs/analysis-smollm2.md).
public struct LayerSkipSearch: Sendable {
    /// Sublayers skipped, as `2 × layer` (attention) and `2 × layer + 1` (FFN).
    public typealias SkipSet = Set<Int>

    public let layerCount: Int
    /// Sublayers every candidate skips.
    public let skipCount: Int
    /// Evaluations after which the search stops.
    public let budget: Int
    /// Matchness at which the search stops early.
    public let goodEnough: Double
    /// The best candidate so far and its matchness.
    public private(set) var best: (skips: SkipSet, matchness: Double)?
    public private(set) var evaluations = 0
    private var pending: [SkipSet]
    /// Deterministic, so the same text gives the same plans.
    private var random: RandomSource

    /// - Parameters:
    ///   - skipFraction: share of the middle layers' sublayers each candidate skips.
    ///   - seed: a plan found before (e.g. persisted from an earlier run), tried first.
    public init(layerCount: Int, skipFraction: Double = 0.4, budget: Int = 16, goodEnough: Double = 0.9,
                seed: LayerPlan? = nil, randomSeed: UInt64 = 0x5157_4946_5421) {
        self.layerCount = layerCount
        let eligible = max(0, 2 * (layerCount - 2))
        skipCount = min(eligible, max(1, Int((skipFraction * Double(eligible)).rounded())))
        self.budget = budget
        self.goodEnough = goodEnough
        random = RandomSource(seed: randomSeed)
        var first: [SkipSet] = []
        if let seed, seed.layerCount == layerCount, let skips = Self.skips(of: seed), !skips.isEmpty {
            first.append(skips)
        }
        // Every other middle layer, whole, trimmed or extended to the skip count.
        var alternate = SkipSet()
        for layer in stride(from: 1, to: layerCount - 1, by: 2) where alternate.count + 2 <= skipCount {
            alternate.formUnion([2 * layer, 2 * layer + 1])
        }
        for sublayer in Self.eligible(layerCount: layerCount).reversed() where alternate.count < skipCount {
            alternate.insert(sublayer)
        }
        first.append(alternate)
        pending = first
    }

    /// True once the budget is spent or the best candidate is good enough.
    public var isFinished: Bool { evaluations >= budget || (best?.matchness ?? 0) >= goodEnough || skipCount == 0 }

    /// The plan to evaluate next.
    public mutating func nextCandidate() -> LayerPlan {
        if pending.isEmpty { pending.append(proposal()) }
        return plan(skipping: pending[0])
    }

    /// Records the matchness of the candidate `nextCandidate()` returned.
    public mutating func record(matchness: Double) {
        guard !pending.isEmpty else { return }
        let candidate = pending.removeFirst()
        evaluations += 1
        if best.map({ matchness > $0.matchness }) ?? true { best = (candidate, matchness) }
    }

    /// The best plan so far, nil before the first evaluation.
    public var bestPlan: LayerPlan? { best.map { plan(skipping: $0.skips) } }

    /// Half the proposals are random sets (to leave a poor neighbourhood), half greedy steps
    /// from the best: one skipped sublayer swapped for a kept one.
    private mutating func proposal() -> SkipSet {
        let eligible = Self.eligible(layerCount: layerCount)
        guard let best, random.next() % 2 == 0 else {
            var shuffled = eligible
            for index in stride(from: shuffled.count - 1, to: 0, by: -1) {
                shuffled.swapAt(index, Int(random.next() % UInt64(index + 1)))
            }
            return SkipSet(shuffled.prefix(skipCount))
        }
        var skips = best.skips
        let skipped = eligible.filter { skips.contains($0) }
        let kept = eligible.filter { !skips.contains($0) }
        guard !skipped.isEmpty, !kept.isEmpty else { return skips }
        skips.remove(skipped[Int(random.next() % UInt64(skipped.count))])
        skips.insert(kept[Int(random.next() % UInt64(kept.count))])
        return skips
    }

    private func plan(skipping skips: SkipSet) -> LayerPlan {
        let steps = (0..<layerCount).compactMap { layer -> LayerStep? in
            let attention = !skips.contains(2 * layer), ffn = !skips.contains(2 * layer + 1)
            return attention || ffn ? LayerStep(layer: layer, runsAttention: attention, runsFFN: ffn) : nil
        }
        return LayerPlan(layerCount: layerCount, steps: steps, method: "layers",
                         notes: "SWIFT-style search: \(skips.count) of \(2 * layerCount) sublayers skipped")
    }

    private static func eligible(layerCount: Int) -> [Int] { Array(2..<max(2, 2 * (layerCount - 1))) }

    /// The skip set of a plan that runs each layer at most once, in order; nil for other plans.
    static func skips(of plan: LayerPlan) -> SkipSet? {
        let layers = plan.steps.map(\.layer)
        guard layers == layers.sorted(), Set(layers).count == layers.count else { return nil }
        var skips = SkipSet(0..<(2 * plan.layerCount))
        for step in plan.steps {
            if step.runsAttention { skips.remove(2 * step.layer) }
            if step.runsFFN { skips.remove(2 * step.layer + 1) }
        }
        // Candidates never skip the first or last layer; a plan that does is not a seed.
        return skips.contains(where: { $0 < 2 || $0 >= 2 * (plan.layerCount - 1) }) ? nil : skips
    }
}
