@testable import StrataEngine
import StrataTestSupport
import Testing

@Suite("Layer-skip search")
struct LayerSkipSearchTests {
    @Test("candidates skip the same number of middle sublayers, never the first or last layer")
    func candidatesKeepTheirShape() {
        var search = LayerSkipSearch(layerCount: 12, skipFraction: 0.4, budget: 30, goodEnough: 2)
        #expect(search.skipCount == 8)  // 40% of the 20 sublayers of layers 1...10
        for round in 0..<30 {
            let plan = search.nextCandidate()
            #expect(throws: Never.self) { try plan.validate(layerCount: 12) }
            let skips = LayerSkipSearch.skips(of: plan)
            #expect(skips?.count == 8, "round \(round)")
            #expect(plan.steps.first == LayerStep(layer: 0) && plan.steps.last == LayerStep(layer: 11))
            search.record(matchness: Double(round % 7) / 10)
        }
        #expect(search.isFinished && search.evaluations == 30)
        #expect(search.best?.matchness == 0.6)
    }

    @Test("the first candidate skips every other middle layer; a seed is tried before it")
    func seedsComeFirst() throws {
        var search = LayerSkipSearch(layerCount: 8, skipFraction: 0.5, budget: 4)
        #expect(search.nextCandidate().steps.map(\.layer) == [0, 2, 4, 6, 7])
        let seed = try LayerPlan.full(layerCount: 8).skipping(layers: [2, 3])
        var seeded = LayerSkipSearch(layerCount: 8, skipFraction: 0.5, budget: 4, seed: seed)
        #expect(seeded.nextCandidate().steps.map(\.layer) == [0, 1, 4, 5, 6, 7])
        // A plan that skips the first layer cannot seed the search.
        var unusable = LayerSkipSearch(layerCount: 8, skipFraction: 0.5, budget: 4, seed: try LayerPlan.full(layerCount: 8).skipping(layers: [0]))
        #expect(unusable.nextCandidate().steps.map(\.layer) == [0, 2, 4, 6, 7])
    }

    @Test("the best candidate is kept, the search stops when it is good enough, and it is deterministic")
    func keepsTheBestAndStops() {
        func run() -> [LayerPlan] {
            var search = LayerSkipSearch(layerCount: 16, budget: 10, goodEnough: 0.8)
            var plans: [LayerPlan] = []
            for matchness in [0.3, 0.5, 0.4, 0.85, 0.1] where !search.isFinished {
                plans.append(search.nextCandidate())
                search.record(matchness: matchness)
            }
            #expect(search.isFinished && search.evaluations == 4 && search.best?.matchness == 0.85)
            #expect(search.bestPlan == plans[3])
            return plans
        }
        let plans = run()
        #expect(plans == run())
        #expect(Set(plans).count == plans.count)
    }

    @Test("a cache snapshot puts back what a pass overwrote")
    func cacheSnapshotRestores() throws {
        let config = try LoadedModels.model("smollm2-135m").config
        var cache = KVCache(config: config, capacity: 8)
        for slot in 0..<cache.keys.count {
            for index in cache.keys[slot].indices {
                cache.keys[slot][index] = Float(slot * 1000 + index)
                cache.values[slot][index] = -Float(slot * 1000 + index)
            }
        }
        let original = cache
        let snapshot = cache.snapshot(2..<5)
        for slot in 0..<cache.keys.count {
            for index in cache.keys[slot].indices { cache.keys[slot][index] = 0; cache.values[slot][index] = 0 }
        }
        cache.restore(snapshot)
        let width = cache.rowWidth
        for slot in 0..<cache.keys.count {
            #expect(cache.keys[slot][(2 * width)..<(5 * width)] == original.keys[slot][(2 * width)..<(5 * width)])
            #expect(cache.values[slot][(2 * width)..<(5 * width)] == original.values[slot][(2 * width)..<(5 * width)])
            #expect(cache.keys[slot][0..<(2 * width)].allSatisfy { $0 == 0 })
        }
    }
}
