@testable import StrataEngine
import Testing

/// The cost model `auto` decides draft lengths with: its estimates and decisions, by hand.
@Suite("Drafter cost model")
struct DrafterCostModelTests {
    @Test("before any measurement, an n-gram draft pays only above the conservative prior of a one-token match")
    func priorsDecide() {
        let model = CostModel()
        // Verify slope 0.35: one draft costs 1.35 steps for (1 − α²)/(1 − α) expected tokens.
        #expect(model.bestLength(acceptance: CostModel.ngramPriors[1], maximum: 8, draftCost: 0) == 0)
        #expect(model.bestLength(acceptance: CostModel.ngramPriors[3], maximum: 8, draftCost: 0) == 1)
        let confident = model.bestLength(acceptance: 0.95, maximum: 8, draftCost: 0)
        #expect(confident > 1 && confident <= 8)
        #expect(model.bestLength(acceptance: 0.95, maximum: 3, draftCost: 0) <= 3)
        // A costly draft step makes the same acceptance pay less.
        #expect(model.bestLength(acceptance: 0.95, maximum: 8, draftCost: 0.5) < confident)
    }

    @Test("times are running averages, and the verify slope comes from the sizes measured")
    func timeEstimates() {
        var model = CostModel()
        #expect(model.verifySlope == CostModel.defaultVerifySlope)
        model.recordVerify(size: 1, seconds: 1.0)
        model.recordVerify(size: 1, seconds: 2.0)
        #expect(model.stepSeconds(1) == 0.7 * 1.0 + 0.3 * 2.0)
        model.recordVerify(size: 3, seconds: 1.3 * 1.6)
        #expect(abs(model.verifySlope - 0.3) < 1e-12)
        #expect(abs(model.stepSeconds(5) - 1.3 * (1 + 0.3 * 4)) < 1e-12)
        #expect(model.stepSeconds(3) == 1.3 * 1.6, "a measured size is used as measured")
    }

    @Test("a declined source drifts back towards its prior, so it is tried again")
    func regainsHope() {
        var model = CostModel()
        model.recordNGram(matchLength: 1, drafted: 4, accepted: 0)
        let lowered = 0.8 * CostModel.ngramPriors[1]
        #expect(model.ngramAcceptance[1] == lowered)
        #expect(model.ngramDraftLength(matchLength: 1, available: 4) == 0)
        #expect(model.ngramAcceptance[1] == lowered + CostModel.regainRate * (CostModel.ngramPriors[1] - lowered))
        // Other match lengths keep their own estimates.
        #expect(model.ngramAcceptance[2] == CostModel.ngramPriors[2])

        model.recordPlan(drafted: 2, accepted: 0)
        let planLowered = 0.8 * CostModel.planPrior
        #expect(model.planAcceptance == planLowered)
        #expect(model.planDraftLength(maximum: 4) == 0)
        #expect(model.planAcceptance > planLowered && model.planAcceptance < CostModel.planPrior)
    }

    @Test("history drafts keep their own acceptance, by the bucket of their match length")
    func historyAcceptance() {
        #expect([2, 3, 4, 7, 8, 15, 16, 32].map(CostModel.historyBucket) == [0, 0, 1, 1, 2, 2, 3, 3])
        var model = CostModel()
        model.recordHistory(matchLength: 20, drafted: 4, accepted: 0)
        #expect(model.historyAcceptance[3] == 0.8 * CostModel.historyPriors[3])
        #expect(model.historyAcceptance[0] == CostModel.historyPriors[0] && model.ngramAcceptance == CostModel.ngramPriors)
        // A long match (a repeated request) drafts several tokens at once; a two-token match in
        // other requests' text at most one, until measured.
        var fresh = CostModel()
        #expect(fresh.historyDraftLength(matchLength: 32, available: 8) > 1)
        #expect(fresh.historyDraftLength(matchLength: 2, available: 8) <= 1)
        // A repeated request's drafts, always accepted, may be believed above the 0.95 other
        // sources are held to, so verification as dear as a loaded CPU's still leaves long drafts.
        var repeated = CostModel()
        repeated.recordVerify(size: 1, seconds: 1)
        repeated.recordVerify(size: 3, seconds: 2.3)
        for _ in 0..<30 { repeated.recordHistory(matchLength: 32, drafted: 2, accepted: 2) }
        #expect(repeated.bestLength(acceptance: 1, maximum: 8, draftCost: 0) == 2)
        #expect(repeated.historyDraftLength(matchLength: 32, available: 8) == 5)
        // A request that drafts from its first round never measures a single-token pass; the one
        // size it measured must not look cheaper than the others for want of that unit.
        var unmeasured = CostModel()
        unmeasured.recordVerify(size: 3, seconds: 0.17)
        for _ in 0..<30 { unmeasured.recordHistory(matchLength: 32, drafted: 2, accepted: 2) }
        #expect(unmeasured.historyDraftLength(matchLength: 32, available: 8) > 2)
    }
}
