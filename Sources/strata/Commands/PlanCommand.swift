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

            --heal linear fits, for each run of removed layers or sublayers, a linear map from the stream \
            leaving the layer before the run to the full model's stream after it (ridge least squares in \
            float64 on the calibration text, ReplaceMe), written beside the plan as <out>.maps.gguf. --plan \
            FILE heals an existing plan instead of building one. Calibrate on text other than the text you \
            evaluate on: the default calibration text is the opening of the novel that `eval compare` scores.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var calibrationOptions: CalibrationOptions

    @Option(help: "block-influence, angular, unified, finercut, attention-only or ffn-only.")
    var method: PlanMethod?

    @Option(name: .customLong("plan"), help: "An existing plan.json to heal (with --heal) instead of building one.")
    var inputPlan: String?

    @Option(help: "Heal the plan's cuts with fitted maps: 'linear'.")
    var heal: HealMethod?

    @Option(name: .customLong("heal-site"), help: "Where a healing map applies: 'stream' (the whole stream leaving the layer before a cut; fits better in our measurements) or 'ffn' (that layer's FFN output; folds into its down projection on export).")
    var healSite: HealSite = .stream

    @Option(name: .customLong("heal-ridge"), help: "Ridge λ of the healing fit, as a fraction of the mean diagonal of XᵀX, or 'auto': per cut, the one of 1e-4, 1e-3, 1e-2, 1e-1 with the least error on the held-out window.")
    var healRidge: String = "auto"

    @Option(name: .customLong("heal-windows"), help: "Most calibration windows (of --context tokens) the healing fit reads; the last is held out to measure the fit.")
    var healWindows: Int = 16

    @Flag(help: "Print the healing fit (cuts, held-out error, seconds) as JSON.")
    var json = false

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
        if inputPlan != nil {
            guard heal != nil else { throw ValidationError("--plan FILE is for healing an existing plan: add --heal linear") }
            guard method == nil, remove == nil, computeFraction == nil else {
                throw ValidationError("--plan heals an existing plan; --method, --remove and --compute-fraction build a new one: give one or the other")
            }
            try checkOutputPath(out, option: "--out", force: force)
            return
        }
        guard method != nil else { throw ValidationError("give --method (or --plan FILE --heal linear to heal an existing plan)") }
        _ = try ridge()
        if healWindows < 2 { throw ValidationError("--heal-windows must be at least 2 (one is held out), found \(healWindows)") }
        switch (remove, computeFraction) {
        case (nil, nil): throw ValidationError("give --remove N or --compute-fraction F")
        case (.some, .some): throw ValidationError("give either --remove or --compute-fraction, not both")
        case (.some(let count), nil) where count < 1: throw ValidationError("--remove must be at least 1, found \(count)")
        default: break
        }
        for path in try outputs().map(\.path) { try checkOutputPath(path, option: "--out", force: force) }
    }

    /// --heal-ridge: nil for auto.
    func ridge() throws -> Double? {
        if healRidge == "auto" { return nil }
        guard let value = Double(healRidge), value >= 0, value.isFinite else {
            throw ValidationError("--heal-ridge must be 'auto' or a number >= 0, found '\(healRidge)'")
        }
        return value
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
        let cost = SublayerCost(config: config)
        if let inputPlan {
            let plan = try LayerPlan.load(path: inputPlan)
            do {
                try plan.validate(layerCount: config.layerCount)
            } catch {
                throw CommandFailure("\(inputPlan): \(error) (the model \(modelOptions.model) has \(config.layerCount) layers)")
            }
            try writeHealed([(plan, out)], model: model, cost: cost)
            return
        }
        guard let method else { throw CommandFailure("give --method") }
        let outputs = try outputs()
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
        var named: [(LayerPlan, String)] = []
        for (var plan, output) in zip(plans, outputs) {
            plan.model = modelOptions.model
            plan.notes = (plan.notes ?? "") + String(format: "; removes %.1f%% of layer compute", cost.removedFraction(plan) * 100)
            named.append((plan, output.path))
        }
        if heal != nil { return try writeHealed(named, model: model, cost: cost) }
        for (plan, path) in named {
            try plan.write(to: path, overwrite: force)
            print("wrote \(path): \(plan.notes ?? "")")
        }
    }

    /// Fits the healing maps of each plan and writes the healed plans (with their tensor files).
    private func writeHealed(_ plans: [(LayerPlan, String)], model: LanguageModel, cost: SublayerCost) throws {
        let config = model.config
        let (calibration, textName) = try calibrationOptions.calibration(for: model, upTo: healWindows)
        var transformer = modelOptions.makeTransformer(model)
        let options = HealingOptions(site: healSite.site, ridge: try ridge())
        var reports: [HealingReport] = []
        for (plan, path) in plans {
            let result: HealingResult
            do {
                result = try healPlan(plan, transformer: &transformer, calibration: calibration, options: options, progress: printProgress)
                printError("")
            } catch let error as HealingError {
                throw CommandFailure("cannot heal \(plan.method ?? "the plan"): \(error)")
            }
            let rows = result.cuts.first?.rows ?? 0
            if rows < 2 * config.hiddenSize {
                printError("strata: warning: the fit saw \(rows) calibration rows for \(config.hiddenSize) features; with fewer calibration "
                           + "rows than twice the width the maps overfit (use more text, --heal-windows or --context)")
            }
            for cut in result.cuts where (cut.heldOutErrorRatio ?? 0) >= 1 {
                printError(String(format: "strata: warning: the map at step %d (%@) does not help on the held-out window (error ratio %.2f)",
                                  cut.step, cut.removed, cut.heldOutErrorRatio ?? 0))
            }
            var healed = result.plan
            healed.model = healed.model ?? modelOptions.model
            try healed.write(to: path, overwrite: force)
            let report = HealingReport(plan: path, text: textName, windows: calibration.windows.count, context: calibration.context,
                                       seconds: result.seconds, cuts: result.cuts)
            reports.append(report)
            if !json {
                print("wrote \(path) and its maps: \(healed.notes ?? "")")
                for cut in result.cuts {
                    let ratio = cut.heldOutErrorRatio.map { String(format: "held-out error %.3f of unhealed", $0) } ?? ""
                    print("  step \(cut.step) (layer \(cut.layer)), \(cut.removed): \(cut.site.rawValue) map on \(cut.rows) rows, ridge \(cut.ridge); \(ratio)")
                }
                print(String(format: "  fitted in %.1f s on %d windows of %d tokens of %@ (the last held out)",
                             result.seconds, calibration.windows.count, calibration.context, textName))
            }
        }
        if json { try printJSON(reports) }
    }

    /// Builds a score-based plan from measured or loaded scores.
    private func build(count: Int, scores: ImportanceReport, layerCount: Int) throws -> LayerPlan {
        guard let method else { preconditionFailure("validate() requires --method when building") }
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
        let method = method ?? .blockInfluence
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

/// `plan --heal`: the healing methods.
enum HealMethod: String, ExpressibleByArgument, CaseIterable {
    case linear
}

/// `plan --heal-site`.
enum HealSite: String, ExpressibleByArgument, CaseIterable {
    case ffn, stream

    var site: LinearMap.Site { self == .ffn ? .feedForwardOutput : .stream }
}

/// What `plan --heal --json` prints per plan.
struct HealingReport: Encodable {
    var plan: String
    var text: String
    var windows: Int
    var context: Int
    var seconds: Double
    var cuts: [HealedCut]
}
