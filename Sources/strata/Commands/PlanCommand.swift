import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

extension PlanMethod: ExpressibleByArgument {}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Build a static layer plan (which layers or sublayers to skip) and write it as plan.json.",
        discussion: """
            Methods: block-influence (remove the lowest-BI layers, ShortGPT); angular (the contiguous \
            block of N layers with the smallest angular distance, Gromov et al.); unified (keep the \
            first and last layers, skip intermediate layers spread evenly); finercut (greedily remove \
            the attention/FFN sublayer whose removal raises calibration perplexity least, re-measuring \
            each time); attention-only / ffn-only (the sublayers whose single removal costs least). \
            Scores come from --from-analysis (a `strata analyze --json` file) or are measured on the \
            calibration text; finercut always measures. Use the plan with --plan on generate, eval, bench.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var calibrationOptions: CalibrationOptions

    @Option(help: "block-influence, angular, unified, finercut, attention-only or ffn-only.")
    var method: PlanMethod

    @Option(help: "How many to remove: layers for block-influence/angular/unified, sublayers for finercut/attention-only/ffn-only.")
    var remove: Int?

    @Option(name: .customLong("compute-fraction"),
            help: "Fraction of layer compute to remove (0 < F < 1), each sublayer weighted by its parameter count; removes as much as fits within F.")
    var computeFraction: Double?

    @Option(name: .customLong("from-analysis"), help: "Scores from `strata analyze --json` instead of measuring them.")
    var fromAnalysis: String?

    @Option(help: "Where to write plan.json.")
    var out: String

    @Flag(help: "Overwrite --out if it exists.")
    var force = false

    func validate() throws {
        switch (remove, computeFraction) {
        case (nil, nil): throw ValidationError("give --remove N or --compute-fraction F")
        case (.some, .some): throw ValidationError("give either --remove or --compute-fraction, not both")
        case (.some(let count), nil) where count < 1: throw ValidationError("--remove must be at least 1, found \(count)")
        case (nil, .some(let fraction)) where !(fraction > 0 && fraction < 1):
            throw ValidationError("--compute-fraction must be between 0 and 1 (exclusive): the fraction of layer compute to remove, found \(fraction)")
        default: break
        }
        if !force && FileManager.default.fileExists(atPath: out) {
            throw ValidationError("\(out) exists; choose another --out or add --force to overwrite it")
        }
    }

    func run() throws {
        let (model, _) = try modelOptions.load()
        let config = model.config
        let target: RemovalTarget = remove.map { .count($0) } ?? .computeFraction(computeFraction!)
        let cost = SublayerCost(config: config)
        var plan: LayerPlan
        do {
            if method == .finerCut {
                if fromAnalysis != nil { printError("finercut measures on the model itself; --from-analysis is ignored") }
                let (calibration, _) = try calibrationOptions.calibration(for: model)
                var transformer = modelOptions.makeTransformer(model)
                plan = try greedySublayerRemoval(transformer: &transformer, calibration: calibration, target: target,
                                                 progress: printProgress).plan
                printError("")
            } else {
                let count = try method.removalCount(target, cost: cost)
                plan = try build(count: count, model: model)
            }
        } catch let error as PlanBuildError {
            throw CommandFailure(error.description)
        }
        plan.model = modelOptions.model
        plan.notes = (plan.notes ?? "") + String(format: "; removes %.1f%% of layer compute", cost.removedFraction(plan) * 100)
        try plan.write(to: out, overwrite: force)
        print("wrote \(out): \(plan.notes ?? "")")
    }

    /// Builds a score-based plan, taking the scores from --from-analysis or measuring them.
    private func build(count: Int, model: LanguageModel) throws -> LayerPlan {
        if method == .unified { return PlanBuilders.unified(layers: model.config.layerCount, count: count) }
        let scores = try scores(model: model)
        func require<Value>(_ values: [Value], _ key: String) throws -> [Value] {
            guard values.count == model.config.layerCount else { throw PlanBuildError.missingScores(method: method, metric: key) }
            return values
        }
        switch method {
        case .blockInfluence:
            return PlanBuilders.lowestBlockInfluence(try require(scores.blockInfluence, "block_influence"), count: count)
        case .angular:
            return try PlanBuilders.angularBlock(try require(scores.angularDistance, "angular_distance"), count: count)
        case .attentionOnly:
            return PlanBuilders.lowestSublayers(try require(scores.perplexityWithoutAttention, "perplexity_without_attention"),
                                                count: count, method: method)
        case .ffnOnly:
            return PlanBuilders.lowestSublayers(try require(scores.perplexityWithoutFFN, "perplexity_without_ffn"),
                                                count: count, method: method)
        case .unified, .finerCut:
            preconditionFailure("handled by the caller")
        }
    }

    private func scores(model: LanguageModel) throws -> ImportanceReport {
        if let fromAnalysis {
            let report = try ImportanceReport.load(path: fromAnalysis)
            guard report.layerCount == model.config.layerCount else {
                throw PlanBuildError.layerCountMismatch(analysis: report.layerCount, model: model.config.layerCount)
            }
            return report
        }
        // Measure only what the method needs: similarity scores come from one pass per window.
        let ablations: [Ablation] = switch method {
        case .attentionOnly: [.attention]
        case .ffnOnly: [.feedForward]
        default: []
        }
        let (calibration, textName) = try calibrationOptions.calibration(for: model)
        var transformer = modelOptions.makeTransformer(model)
        let report = try analyzeImportance(
            transformer: &transformer, calibration: calibration, modelName: modelOptions.model, textName: textName,
            options: ImportanceOptions(ablations: ablations, logitLensPositions: 0, measuresWeightOutliers: false),
            progress: printProgress)
        printError("")
        return report
    }
}
