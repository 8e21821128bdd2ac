import Foundation
import StrataEngine
import Testing

@Suite("LayerPlan")
struct LayerPlanTests {
    @Test func fullPlanRunsEveryLayerOnce() {
        let plan = LayerPlan.full(layerCount: 4)
        #expect(plan.steps.map(\.layer) == [0, 1, 2, 3])
        #expect(plan.steps.allSatisfy { $0.runsAttention && $0.runsFFN })
        #expect(plan.isFull)
        var skipped = plan
        skipped.steps.remove(at: 2)
        #expect(!skipped.isFull)
    }

    @Test func jsonRoundTripUsesDocumentedKeys() throws {
        let plan = LayerPlan(layerCount: 3, steps: [LayerStep(layer: 0), LayerStep(layer: 2, runsAttention: false)])
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        #expect(json.contains("\"layer_count\":3") && json.contains("\"attention\":false") && json.contains("\"ffn\":true"))
        #expect(try JSONDecoder().decode(LayerPlan.self, from: Data(json.utf8)) == plan)
    }
}
