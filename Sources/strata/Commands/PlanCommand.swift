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
            help: ArgumentHelp(
                "Fraction of layer compute to remove (0 < F < 1), each sublayer weighted by its parameter count; removes as much as fits within F.",
                discussion: "A comma-separated list (e.g. 0.1,0.2,0.3) writes one plan per fraction, named after --out with the "
                    + "percentage added (plan.json -> plan-10.json, plan-20.json, ...); finercut then runs one search for all of them."))
    var computeFraction: String?

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
        default: break
        }
        for path in try outputs().map(\.path) { try checkOutputPath(path, option: "--out", force: force) }
    }

    /// The fractions of --compute-fraction, in the order given.
    func fractions() throws -> [Double] {
        guard let computeFraction else { return [] }
        let parts = computeFraction.split(separator: ",", omittingEmptySubsequences: false)
        let values = try parts.map { part in
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let fraction = Double(text), fraction > 0, fraction < 1 else {
                throw ValidationError("--compute-fraction must be between 0 and 1 (exclusive): the fraction of layer compute to remove, found '\(text)'")
            }
            return fraction
        }
        guard Set(values).count == values.count else { throw ValidationError("--compute-fraction lists a fraction twice: \(computeFraction)") }
        return values
    }

    /// Each target with the file its plan goes to: --out itself for one target, else --out with
    /// the percentage added before the extension.
    func outputs() throws -> [(target: RemovalTarget, path: String)] {
        if let remove { return [(.count(remove), out)] }
        let fractions = try fractions()
        if fractions.count == 1 { return [(.computeFraction(fractions[0]), out)] }
        let url = URL(fileURLWithPath: out)
        let stem = url.pathExtension.isEmpty ? out : String(out.dropLast(url.pathExtension.count + 1))
        let suffix = url.pathExtension.isEmpty ? "" : "." + url.pathExtension
        return fractions.map { fraction in
            (.computeFraction(fraction), stem + "-" + String(format: "%g", (fraction * 100 * 1e6).rounded() / 1e6) + suffix)
        }
    }

    func run() throws {
        let (model, _) = try modelOptions.load()
        let config = model.config
        let outputs = try outputs()
        let cost = SublayerCost(config: config)
        var plans: [LayerPlan]
        do {
            if method == .finerCut {
                if fromAnalysis != nil { printError("finercut measures on the model itself; --from-analysis is ignored") }
                let (calibration, _) = try calibrationOptions.calibration(for: model)
                var transformer = modelOptions.makeTransformer(model)
                plans = try greedySublayerRemoval(transformer: &transformer, calibration: calibration, targets: outputs.map(\.target),
                                                  progress: printProgress).map(\.plan)
                printError("")
            } else {
                let counts = try outputs.map { try method.removalCount($0.target, cost: cost) }
                var scores: ImportanceReport?
                plans = try counts.map { count in
                    if method == .unified { return PlanBuilders.unified(layers: config.layerCount, count: count) }
                    if scores == nil { scores = try self.scores(model: model) }
                    return try build(count: count, scores: scores!, layerCount: config.layerCount)
                }
            }
        } catch let error as PlanBuildError {
            throw CommandFailure(error.description)
        }
        for (var plan, output) in zip(plans, outputs) {
            plan.model = modelOptions.model
            plan.notes = (plan.notes ?? "") + String(format: "; removes %.1f%% of layer compute", cost.removedFraction(plan) * 100)
            try plan.write(to: output.path, overwrite: force)
            print("wrote \(output.path): \(plan.notes ?? "")")
        }
    }

    /// Builds a score-based plan from measured or loaded scores.
    private func build(count: Int, scores: ImportanceReport, layerCount: Int) throws -> LayerPlan {
        func require<Value>(_ values: [Value], _ key: String) throws -> [Value] {
            guard values.count == layerCount else { throw PlanBuildError.missingScores(method: method, metric: key) }
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
