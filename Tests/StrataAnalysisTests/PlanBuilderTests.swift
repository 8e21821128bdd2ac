import StrataAnalysis
import StrataEngine
import Testing

@Suite("Static plan builders on synthetic scores")
struct PlanBuilderTests {
    func removedLayers(_ plan: LayerPlan) -> [Int] {
        let kept = Set(plan.steps.map(\.layer))
        return (0..<plan.layerCount).filter { !kept.contains($0) }
    }

    @Test("block influence removes the lowest-scoring layers, ties to the earlier layer")
    func lowestBlockInfluence() {
        let scores = [0.9, 0.05, 0.3, 0.01, 0.05, 0.4, 0.02, 0.8]
        let plan = PlanBuilders.lowestBlockInfluence(scores, count: 3)
        #expect(removedLayers(plan) == [1, 3, 6])
        #expect(plan.method == "block-influence")
        #expect(plan.notes?.contains("1, 3, 6") == true)
        #expect(plan.steps.allSatisfy { $0.runsAttention && $0.runsFFN })
    }

    @Test("angular removes the contiguous block with the minimal d(l, n), ignoring nulls")
    func angularBlock() throws {
        // 8 layers, spans 1...4; d(4, 2) is the smallest for n = 2, d(1, 3) for n = 3.
        var distances = [[Double?]](repeating: [0.5, 0.6, 0.7, 0.8], count: 8)
        for layer in 0..<8 {
            for span in 1...4 where layer + span > 8 { distances[layer][span - 1] = nil }
        }
        distances[4][1] = 0.1
        distances[1][2] = 0.2
        distances[7][0] = 0.01  // layer 7 alone: smallest for n = 1
        #expect(removedLayers(try PlanBuilders.angularBlock(distances, count: 2)) == [4, 5])
        #expect(removedLayers(try PlanBuilders.angularBlock(distances, count: 3)) == [1, 2, 3])
        #expect(removedLayers(try PlanBuilders.angularBlock(distances, count: 1)) == [7])
        #expect(throws: PlanBuildError.self) { try PlanBuilders.angularBlock(distances, count: 5) }
    }

    @Test("unified keeps the first and last layers and spreads the skipped ones evenly")
    func unified() {
        #expect(removedLayers(PlanBuilders.unified(layers: 30, count: 14)) == Array(stride(from: 2, through: 28, by: 2)))
        #expect(removedLayers(PlanBuilders.unified(layers: 30, count: 1)) == [15])
        #expect(removedLayers(PlanBuilders.unified(layers: 30, count: 28)) == Array(1...28))
        for count in 1...28 {
            let removed = removedLayers(PlanBuilders.unified(layers: 30, count: count))
            #expect(removed.count == count && !removed.contains(0) && !removed.contains(29), "count \(count)")
            // Evenly: consecutive gaps differ by at most one layer.
            let gaps = zip(removed.dropFirst(), removed).map { $0 - $1 }
            #expect((gaps.max() ?? 0) - (gaps.min() ?? 0) <= 1, "count \(count): \(removed)")
        }
    }

    @Test("attention-only and FFN-only switch off the sublayers with the lowest removal perplexity")
    func sublayers() {
        let perplexities = [500.0, 21, 40, 20.9, 22, 30]
        let attention = PlanBuilders.lowestSublayers(perplexities, count: 2, method: .attentionOnly)
        #expect(attention.steps.count == 6)
        #expect(attention.steps.filter { !$0.runsAttention }.map(\.layer) == [1, 3])
        #expect(attention.steps.allSatisfy { $0.runsFFN })
        let ffn = PlanBuilders.lowestSublayers(perplexities, count: 3, method: .ffnOnly)
        #expect(ffn.steps.filter { !$0.runsFFN }.map(\.layer) == [1, 3, 4])
        #expect(ffn.steps.allSatisfy { $0.runsAttention })
    }

    @Test("removal counts: range checks and compute fractions by parameter count")
    func removalCounts() throws {
        let cost = SublayerCost(attention: 1, feedForward: 3, layerCount: 30)
        #expect(try PlanMethod.blockInfluence.removalCount(.count(29), cost: cost) == 29)
        #expect(throws: PlanBuildError.invalidCount(method: .blockInfluence, count: 30, maximum: 29)) {
            try PlanMethod.blockInfluence.removalCount(.count(30), cost: cost)
        }
        #expect(throws: PlanBuildError.invalidCount(method: .unified, count: 29, maximum: 28)) {
            try PlanMethod.unified.removalCount(.count(29), cost: cost)
        }
        #expect(throws: PlanBuildError.invalidCount(method: .angular, count: 16, maximum: 15)) {
            try PlanMethod.angular.removalCount(.count(16), cost: cost)
        }
        #expect(throws: PlanBuildError.invalidCount(method: .attentionOnly, count: 0, maximum: 30)) {
            try PlanMethod.attentionOnly.removalCount(.count(0), cost: cost)
        }
        // 10% of 30 layers is 3 layers; of 120 compute units 12 = 12 attention or 4 FFN sublayers.
        #expect(try PlanMethod.blockInfluence.removalCount(.computeFraction(0.1), cost: cost) == 3)
        #expect(try PlanMethod.attentionOnly.removalCount(.computeFraction(0.1), cost: cost) == 12)
        #expect(try PlanMethod.ffnOnly.removalCount(.computeFraction(0.1), cost: cost) == 4)
        #expect(throws: PlanBuildError.invalidFraction(1.5)) {
            try PlanMethod.blockInfluence.removalCount(.computeFraction(1.5), cost: cost)
        }
        #expect(throws: PlanBuildError.invalidFraction(0)) {
            try PlanMethod.blockInfluence.removalCount(.computeFraction(0), cost: cost)
        }
        #expect(throws: PlanBuildError.self) { try PlanMethod.blockInfluence.removalCount(.computeFraction(0.01), cost: cost) }
        // Removing every attention sublayer is only 25% of this model's compute.
        #expect(throws: PlanBuildError.self) { try PlanMethod.attentionOnly.removalCount(.computeFraction(0.3), cost: cost) }
    }

    @Test("removed fraction counts each sublayer by its parameters")
    func removedFraction() throws {
        let cost = SublayerCost(attention: 1, feedForward: 3, layerCount: 4)
        let plan = try LayerPlan.full(layerCount: 4).skipping(layers: [1], attention: [2])
        #expect(abs(cost.removedFraction(plan) - 5.0 / 16) < 1e-12)
    }
}

@Suite("Bundled calibration text")
struct CalibrationTextTests {
    @Test func isTheOpeningOfTheDefaultPerplexityText() {
        let text = CalibrationText.prideAndPrejudice
        #expect(text.unicodeScalars.count == 11_468)
        #expect(text.hasPrefix("PRIDE AND PREJUDICE") && text.hasSuffix("another young man."))
        #expect(defaultPerplexityText.hasPrefix(text) && defaultPerplexityText.count > text.count)
    }
}
