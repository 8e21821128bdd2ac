import StrataAnalysis
import StrataEngine
import StrataTestSupport
import Testing

/// The search's mechanics on a tiny model (and on SmolLM2-135M in the full tier), with a short
/// calibration.
@Suite("FinerCut greedy sublayer removal (short calibration)")
struct GreedySublayerRemovalTests {
    static let models = TestModel.mechanics()

    func calibration(_ model: LanguageModel) throws -> CalibrationSet {
        let tokens = model.tokenizer.encode(CalibrationText.prideAndPrejudice, addSpecial: false, parseSpecial: false)
        // One short window keeps the candidate passes of each round (two per layer) cheap.
        return try CalibrationSet(tokens: tokens, context: 24, windows: 1)
    }

    @Test("the first removal is the sublayer whose single removal costs least, as the analysis measures it",
          arguments: models)
    func firstRemovalMatchesAblation(testModel: TestModel) throws {
        let model = try testModel.load()
        let calibration = try calibration(model)
        var transformer = try testModel.transformer(numerics: .exact)
        let analysis = try analyzeImportance(
            transformer: &transformer, calibration: calibration, modelName: testModel.description, textName: "test",
            options: ImportanceOptions(ablations: [.attention, .feedForward], logitLensPositions: 0, measuresWeightOutliers: false))
        let (plan, removals) = try greedySublayerRemoval(transformer: &transformer, calibration: calibration, target: .count(2))
        #expect(removals.count == 2)
        let candidates = analysis.perplexityWithoutAttention.enumerated().map { ($0.element, $0.offset, Ablation.attention) }
            + analysis.perplexityWithoutFFN.enumerated().map { ($0.element, $0.offset, Ablation.feedForward) }
        let best = try #require(candidates.min { $0.0 < $1.0 })
        #expect(removals[0].layer == best.1 && removals[0].sublayer == best.2)
        #expect(abs(removals[0].perplexity - best.0) <= 1e-9 * best.0)
        // The plan switches off exactly the removed sublayers.
        let off = plan.steps.flatMap { step in
            (step.runsAttention ? [] : ["\(step.layer) attention"]) + (step.runsFFN ? [] : ["\(step.layer) ffn"])
        }
        #expect(Set(off) == Set(removals.map { "\($0.layer) \($0.sublayer.rawValue)" }))
        #expect(plan.method == "finercut")
    }

    @Test("a compute-fraction target never removes more than asked", arguments: models)
    func budget(testModel: TestModel) throws {
        let model = try testModel.load()
        let calibration = try calibration(model)
        var transformer = try testModel.transformer(numerics: .exact)
        let cost = SublayerCost(config: model.config)
        // Room for one attention sublayer and no FFN sublayer: one cheap round, then a stop.
        let fraction = 1.5 * cost.attention / cost.total
        let (plan, removals) = try greedySublayerRemoval(
            transformer: &transformer, calibration: calibration, target: .computeFraction(fraction))
        #expect(removals.count == 1 && removals.first?.sublayer == .attention)
        #expect(cost.removedFraction(plan) <= fraction)
    }

    @Test("several targets in one search give what each target's own search gives", arguments: models)
    func severalTargets(testModel: TestModel) throws {
        let model = try testModel.load()
        let calibration = try calibration(model)
        var transformer = try testModel.transformer(numerics: .fast)
        let cost = SublayerCost(config: model.config)
        // The fraction target has room for one attention sublayer only: it shares the first
        // round with the count target and then stops, or parts from it there if the count
        // target's first choice is an FFN sublayer.
        let targets: [RemovalTarget] = [.computeFraction(1.5 * cost.attention / cost.total), .count(2)]
        let together = try greedySublayerRemoval(transformer: &transformer, calibration: calibration, targets: targets)
        #expect(together.count == targets.count)
        for (target, result) in zip(targets, together) {
            let alone = try greedySublayerRemoval(transformer: &transformer, calibration: calibration, target: target)
            #expect(result.removals == alone.removals, "\(target)")
            #expect(result.plan == alone.plan, "\(target)")
        }
        #expect(together[0].removals.count == 1 && together[0].removals[0].sublayer == .attention)
        #expect(together[1].removals.count == 2)
    }
}
