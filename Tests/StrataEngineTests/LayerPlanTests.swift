import Foundation
import StrataEngine
import StrataTestSupport
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

@Suite("Plan files and validation")
struct PlanFileTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(UUID()).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func layerListsParseRangesAndRejectGarbage() throws {
        #expect(try LayerPlan.parseLayerList("3,7-9") == [3, 7, 8, 9])
        #expect(try LayerPlan.parseLayerList(" 1 , 2") == [1, 2])
        // the last two would expand to sets of billions of indices before any check
        for bad in ["", "a", "3-", "-2", "1,,2", "1-2-3", "0-9223372036854775807", "70000"] {
            #expect(throws: PlanError.invalidLayerList(bad)) { try LayerPlan.parseLayerList(bad) }
        }
    }

    @Test func reversedRangesAreNamed() throws {
        #expect(throws: PlanError.reversedLayerRange(list: "1,5-3", first: 5, last: 3)) { try LayerPlan.parseLayerList("1,5-3") }
        let message = PlanError.reversedLayerRange(list: "5-3", first: 5, last: 3).description
        #expect(message == "invalid layer list '5-3': the range 5-3 is reversed (write 3-5)")
        #expect(try LayerPlan.parseLayerList("4-4") == [4])
    }

    @Test func planFileRoundTripsWithOptionalFields() throws {
        let plan = LayerPlan(layerCount: 4, steps: [LayerStep(layer: 0), LayerStep(layer: 3, runsFFN: false)],
                             model: "tiny", method: "manual", notes: "test")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(UUID()).json").path
        try plan.write(to: path)
        #expect(try LayerPlan.load(path: path) == plan)
        #expect(throws: PlanError.self) { try plan.write(to: path) }
        // Sublayer flags default to true.
        let minimal = try write(#"{"layer_count": 2, "steps": [{"layer": 1}]}"#)
        #expect(try LayerPlan.load(path: minimal).steps == [LayerStep(layer: 1)])
    }

    @Test func badFilesGiveClearErrors() throws {
        func reason(_ text: String) throws -> String {
            let path = try write(text)
            do {
                _ = try LayerPlan.load(path: path)
                return "loaded"
            } catch {
                #expect(error.description.contains(path))
                return error.description
            }
        }
        #expect(try reason("{not json").contains("not valid JSON"))
        #expect(try reason(#"{"layer_count": 2}"#).contains("missing key 'steps'"))
        #expect(try reason(#"{"layer_count": 2, "steps": [{"attention": true}]}"#).contains("missing key 'layer' in steps[0]"))
        #expect(try reason(#"{"layer_count": "two", "steps": []}"#).contains("layer_count should be a whole number"))
        #expect(try reason(#"[1]"#).contains("the top level should be an object"))
        #expect(try reason(#"{"layer_count": 2, "steps": [{"layer": 0, "attention": 3}]}"#).contains("steps[0].attention should be true or false"))
        #expect(try reason(#"{"layer_count": 2, "steps": [{"layer": 1.5}]}"#).contains("a number does not fit its field"))
        #expect(throws: PlanError.unreadable(path: "/nonexistent/plan.json", reason: "no such file")) {
            try LayerPlan.load(path: "/nonexistent/plan.json")
        }
    }

    @Test func validationNamesTheProblem() {
        #expect(throws: PlanError.empty) { try LayerPlan(layerCount: 3, steps: []).validate(layerCount: 3) }
        let nothing = (0..<3).map { LayerStep(layer: $0, runsAttention: false, runsFFN: false) }
        #expect(throws: PlanError.empty) { try LayerPlan(layerCount: 3, steps: nothing).validate(layerCount: 3) }
        #expect(throws: PlanError.layerCountMismatch(plan: 4, model: 3)) { try LayerPlan.full(layerCount: 4).validate(layerCount: 3) }
        let loop = LayerPlan(layerCount: 3, steps: Array(repeating: LayerStep(layer: 1), count: 48))
        #expect(throws: Never.self) { try loop.validate(layerCount: 3) }
        let runaway = LayerPlan(layerCount: 3, steps: Array(repeating: LayerStep(layer: 1), count: 49))
        #expect(throws: PlanError.tooManySteps(steps: 49, limit: 48)) { try runaway.validate(layerCount: 3) }
        #expect(PlanError.tooManySteps(steps: 49, limit: 48).description
                == "the plan has 49 steps; at most 48 (16 per layer of the model) are allowed")
        #expect(throws: PlanError.layerOutOfRange(step: 1, layer: 5, layerCount: 3)) {
            try LayerPlan(layerCount: 3, steps: [LayerStep(layer: 0), LayerStep(layer: 5)]).validate(layerCount: 3)
        }
    }

    @Test func skippingRemovesLayersAndSublayers() throws {
        let plan = try LayerPlan.full(layerCount: 5).skipping(layers: [1, 3], attention: [4], ffn: [0])
        #expect(plan.steps == [LayerStep(layer: 0, runsFFN: false), LayerStep(layer: 2), LayerStep(layer: 4, runsAttention: false)])
    }

    @Test func skippingRefusesLayersTheModelLacks() {
        let full = LayerPlan.full(layerCount: 5)
        #expect(throws: PlanError.layerNotInModel(layer: 5, layerCount: 5)) { try full.skipping(layers: [1, 5]) }
        #expect(throws: PlanError.layerNotInModel(layer: 7, layerCount: 5)) { try full.skipping(attention: [9, 7]) }
        #expect(throws: PlanError.layerNotInModel(layer: -1, layerCount: 5)) { try full.skipping(ffn: [-1]) }
        #expect(PlanError.layerNotInModel(layer: 5, layerCount: 5).description
            == "layer 5 does not exist: the model has layers 0...4")
    }

    @Test func skippingNamesItsMethod() throws {
        let full = LayerPlan.full(layerCount: 5)
        #expect(try full.skipping(layers: [2]).method == "manual")
        #expect(try LayerPlan(layerCount: 5, steps: full.steps).skipping(ffn: [2]).method == "manual")
        // nothing skipped: the plan is unchanged, still the full model
        #expect(try full.skipping() == full)
        // a plan made another way keeps its method, with the skips on top
        var chosen = try full.skipping(layers: [3])
        chosen.method = "block-influence"
        #expect(try chosen.skipping(attention: [1]).method == "block-influence")
    }

    @Test func repeatedLayersGetTheirOwnCacheSlots() {
        let plan = LayerPlan(layerCount: 4, steps: [0, 1, 2, 1, 2, 3].map { LayerStep(layer: $0) })
        #expect(plan.cacheSlots == [0, 1, 2, 4, 5, 3])
        #expect(LayerPlan.full(layerCount: 3).cacheSlots == [0, 1, 2])
    }
}

@Suite("Plan compute fractions on a real model")
struct PlanForwardTests {
    @Test func computeFractionCountsSublayerWeights() throws {
        let config = try LoadedModels.model("smollm2-135m").config
        let full = LayerPlan.full(layerCount: 30)
        #expect(full.computeFraction(config: config) == 1)
        #expect(abs(try full.skipping(layers: Set(0..<15)).computeFraction(config: config) - 0.5) < 1e-12)
        let noFFN = try full.skipping(ffn: Set(0..<30)).computeFraction(config: config)
        // SmolLM2: attention 576 × (2·576 + 2·192) weights, FFN 3 × 576 × 1536 per layer.
        #expect(abs(noFFN - 884_736.0 / (884_736.0 + 2_654_208.0)) < 1e-12)
    }
}
