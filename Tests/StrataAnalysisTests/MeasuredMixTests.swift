@testable import StrataAnalysis
import StrataKernels
import StrataTestSupport
import Testing

/// The per-tensor choice of `MeasuredMix` on made-up errors, where the best choice is known.
@Suite struct MeasuredMixTests {
    /// A tensor of 256 elements at Q2_K (84 bytes), Q3_K (110) and Q4_K (144).
    func tensor(_ name: String, layer: Int, errors: [Double]) -> MeasuredMix.TensorChoices {
        MeasuredMix.TensorChoices(name: name, layer: layer, elements: 256, formats: [.q2_K, .q3_K, .q4_K],
                                  bits: [84 * 8, 110 * 8, 144 * 8], errors: errors)
    }

    @Test func theMoreImportantLayerGetsTheBitsAndReverseTurnsItRound() throws {
        // two tensors alike in error; room for one of them at Q4_K and the other at Q3_K
        let choices = [tensor("blk.0.ffn_up.weight", layer: 0, errors: [9, 4, 1]),
                       tensor("blk.1.ffn_up.weight", layer: 1, errors: [9, 4, 1])]
        let budget = Double((110 + 144) * 8) / 512
        let importance = [0.1, 0.9]
        for reverse in [false, true] {
            let mix = try MeasuredMix(choices: choices, layerWeights: MeasuredMix.layerWeights(importance: importance, reverse: reverse),
                                      budget: budget, sourceBitsPerWeight: 8)
            let favoured = reverse ? "blk.0.ffn_up.weight" : "blk.1.ffn_up.weight"
            let other = reverse ? "blk.1.ffn_up.weight" : "blk.0.ffn_up.weight"
            #expect(mix.formats[favoured] == .q4_K && mix.formats[other] == .q3_K, "reverse \(reverse): \(mix.formats)")
            #expect(mix.bitsPerWeight <= budget + 1e-12)
        }
    }

    @Test func bitsGoWhereTheErrorDrops() throws {
        // the first tensor's source holds no more than Q3_K (no gain above it); the second keeps gaining
        let choices = [tensor("blk.0.attn_v.weight", layer: 0, errors: [5, 0, 0]),
                       tensor("blk.0.ffn_down.weight", layer: 0, errors: [5, 2, 0.5])]
        let budget = Double((110 + 144) * 8) / 512
        let mix = try MeasuredMix(choices: choices, layerWeights: [1], budget: budget, sourceBitsPerWeight: 8)
        #expect(mix.formats == ["blk.0.attn_v.weight": .q3_K, "blk.0.ffn_down.weight": .q4_K])
    }

    @Test func theBudgetHoldsAndMoreBudgetNeverAddsError() throws {
        var generator = SeededGenerator(seed: 0x3E_A5)
        let choices = (0..<40).map { index -> MeasuredMix.TensorChoices in
            let base = Double.random(in: 1...100, using: &generator)
            return tensor("blk.\(index % 8).t\(index).weight", layer: index % 8,
                          errors: [base, base * Double.random(in: 0.1...0.5, using: &generator), base * 0.02])
        }
        let weights = MeasuredMix.layerWeights(importance: (0..<8).map(Double.init), reverse: false)
        var previous = Double.infinity
        for budget in stride(from: 2.7, through: 4.5, by: 0.15) {
            let mix = try MeasuredMix(choices: choices, layerWeights: weights, budget: budget, sourceBitsPerWeight: 8)
            let chosen = choices.map { tensor in tensor.formats.firstIndex(of: mix.formats[tensor.name]!)! }
            let bits = zip(choices, chosen).reduce(0) { $0 + $1.0.bits[$1.1] }
            #expect(Double(bits) / Double(40 * 256) <= budget + 1e-12)
            let error = zip(choices, chosen).reduce(0.0) { $0 + weights[$1.0.layer] * $1.0.errors[$1.1] }
            #expect(error <= previous, "budget \(budget): weighted error \(error) above \(previous)")
            previous = error
        }
    }

    @Test func budgetsOutsideWhatTheTypesReachAreRefused() {
        let choices = [tensor("blk.0.ffn_up.weight", layer: 0, errors: [3, 2, 1])]
        #expect(throws: QuantizationRequestError.self) {
            try MeasuredMix(choices: choices, layerWeights: [1], budget: 2.0, sourceBitsPerWeight: 8)
        }
        #expect(throws: QuantizationRequestError.self) {
            try MeasuredMix(choices: choices, layerWeights: [1], budget: 4.6, sourceBitsPerWeight: 4.5)
        }
    }

    @Test func layerWeightsSpanTheImportanceRange() {
        let weights = MeasuredMix.layerWeights(importance: [0.3, 0.1, 0.2], reverse: false)
        #expect(abs(weights[0] - 2) < 1e-12 && abs(weights[1] - 0.5) < 1e-12 && abs(weights[2] - 1) < 1e-12)
        #expect(MeasuredMix.layerWeights(importance: [0.3, 0.1, 0.2], reverse: true) == [weights[1], weights[0], weights[2]])
        let wide = MeasuredMix.layerWeights(importance: [0.3, 0.1, 0.2], reverse: false, range: 16)
        #expect(abs(wide[0] - 4) < 1e-12 && abs(wide[1] - 0.25) < 1e-12 && abs(wide[2] - 1) < 1e-12)
    }

    /// A wider range moves bits to the important layer that a narrow one leaves even: two layers
    /// with the same errors (falling fourfold per step), a budget that holds Q4_K + Q2_K (or
    /// Q3_K twice) but not Q4_K + Q3_K.
    @Test func widerRangeLetsImportanceOutweighError() throws {
        let choices = [tensor("blk.0.ffn_up.weight", layer: 0, errors: [16, 4, 1]),
                       tensor("blk.1.ffn_up.weight", layer: 1, errors: [16, 4, 1])]
        func steps(range: Double) throws -> [String] {
            let weights = MeasuredMix.layerWeights(importance: [1, 0], reverse: false, range: range)
            let mix = try MeasuredMix(choices: choices, layerWeights: weights, budget: Double((144 + 84) * 8) / 512,
                                      sourceBitsPerWeight: 8)
            return ["blk.0.ffn_up.weight", "blk.1.ffn_up.weight"].map { mix.formats[$0]?.description ?? "" }
        }
        #expect(try steps(range: 1) == ["Q3_K", "Q3_K"])
        #expect(try steps(range: 16) == ["Q4_K", "Q2_K"])
    }

    /// Measured loss changes replace the errors: the down projection's measured error says Q2_K
    /// is cheaper than Q3_K (as on SmolLM2), the trials say it costs the most; with them the
    /// bits go to the down projection, without them away from it.
    @Test func kindTrialsReplaceMeasuredErrors() throws {
        let choices = [tensor("blk.0.attn_k.weight", layer: 0, errors: [9, 4, 1]),
                       tensor("blk.0.ffn_down.weight", layer: 0, errors: [1, 4, 0.5])]
        let budget = Double((84 + 144) * 8) / 512
        func trial(_ kind: String, _ to: String, _ offset: Int, _ loss: Double) -> KindSensitivity.Trial {
            KindSensitivity.Trial(kind: kind, tensors: 1, from: "Q3_K", to: to, offset: offset, lossChange: loss)
        }
        let sensitivity = KindSensitivity(
            baseline: "Q3_K", baselineLoss: 3,
            trials: [trial("attn_k", "Q2_K", -1, 0.01), trial("attn_k", "Q4_K", 1, -0.01),
                     trial("ffn_down", "Q2_K", -1, 0.5), trial("ffn_down", "Q4_K", 1, -0.1)], seconds: 0)
        let plain = try MeasuredMix(choices: choices, layerWeights: [1], budget: budget, sourceBitsPerWeight: 8)
        #expect(plain.formats == ["blk.0.attn_k.weight": .q4_K, "blk.0.ffn_down.weight": .q2_K])
        let estimated = sensitivity.estimates(choices)
        #expect(estimated.map(\.errors) == [[0.01, 0, -0.01], [0.5, 0, -0.1]])
        let mix = try MeasuredMix(choices: estimated, layerWeights: [1], budget: budget, sourceBitsPerWeight: 8)
        #expect(mix.formats == ["blk.0.attn_k.weight": .q2_K, "blk.0.ffn_down.weight": .q4_K])
    }

    /// A kind's loss change is shared equally among its layers, only the measured types stay
    /// candidates, and the importance weights then decide between the layers.
    @Test func kindLossIsSharedEquallyAndImportanceSplitsIt() throws {
        let choices = [tensor("blk.0.ffn_up.weight", layer: 0, errors: [10, 4, 1]),
                       tensor("blk.1.ffn_up.weight", layer: 1, errors: [6, 4, 3])]
        func trial(_ to: String, _ offset: Int, _ loss: Double) -> KindSensitivity.Trial {
            KindSensitivity.Trial(kind: "ffn_up", tensors: 2, from: "Q3_K", to: to, offset: offset, lossChange: loss)
        }
        let lowerOnly = KindSensitivity(baseline: "Q3_K", baselineLoss: 3, trials: [trial("Q2_K", -1, 0.4)], seconds: 0)
        let estimated = lowerOnly.estimates(choices)
        #expect(estimated.map(\.formats) == [[.q2_K, .q3_K], [.q2_K, .q3_K]])
        #expect(estimated.map(\.errors) == [[0.2, 0], [0.2, 0]])
        // moving both layers down costs 0.4 and up gains 0.3: on average the uniform type is best,
        // with layer weights 1/4 and 4 the important layer goes up and the other down
        let both = KindSensitivity(baseline: "Q3_K", baselineLoss: 3, trials: [trial("Q2_K", -1, 0.4), trial("Q4_K", 1, -0.3)],
                                   seconds: 0)
        let budget = Double((84 + 144) * 8) / 512
        for (range, expected) in [(1.0, ["Q3_K", "Q3_K"]), (16.0, ["Q2_K", "Q4_K"])] {
            let weights = MeasuredMix.layerWeights(importance: [0, 1], reverse: false, range: range)
            let mix = try MeasuredMix(choices: both.estimates(choices), layerWeights: weights, budget: budget, sourceBitsPerWeight: 8)
            #expect(["blk.0.ffn_up.weight", "blk.1.ffn_up.weight"].map { mix.formats[$0]?.description ?? "" } == expected,
                    "range \(range): \(mix.formats)")
        }
        #expect(KindSensitivity.kindName(of: "blk.12.ffn_down.weight") == "ffn_down")
        #expect(KindSensitivity.kindName(of: "blk.3.attn_q.bias") == "attn_q.bias")
        #expect(KindSensitivity.trialOffsets(baselineStep: 1, candidates: 5) == [-1, 1])
        #expect(KindSensitivity.trialOffsets(baselineStep: 0, candidates: 4) == [1, 2])
        #expect(KindSensitivity.trialOffsets(baselineStep: 4, candidates: 5) == [-1])
    }
}
