import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

/// `--speculative` and the draft options of `strata generate` and `strata bench`.
struct SpeculationOptions: ParsableArguments {
    @Flag(help: "Self-speculative decoding: drafts are verified by the full model, so the output is exactly what plain decoding gives (greedy: the same tokens; sampling: the same distribution).")
    var speculative = false

    // The draft options are optionals so that one given without --speculative can be refused
    // (it would be ignored); their defaults are the computed properties below.
    @Option(name: .customLong("draft"), help: ArgumentHelp(
        "Draft source: auto (n-gram lookup when the text has a match, else a layer-skip plan an earlier `--draft layers` run saved, if the cost model says it pays, else plain), ngram, layers (search a layer-skip plan while generating, SWIFT-style, and save the best for next time), early-exit:E (the first E layers), shortcut:E[:V] (the first E layers, a fitted map to the last layer's stream and an output head over the V most frequent tokens; default V 16384; fitted once per model on the bundled text and kept under $STRATA_PLANS), or a plan file from `strata plan`. (default: auto)",
        valueName: "draft"))
    var draftOption: String?

    @Option(name: .customLong("draft-domain"), help: ArgumentHelp(
        "The kind of text, for the layer-skip plans `--draft layers` saves under $STRATA_PLANS (default ~/.cache/strata/plans) and reads back: one plan per model and domain. (default: general)",
        valueName: "name"))
    var draftDomainOption: String?

    @Option(name: .customLong("draft-max"), help: ArgumentHelp("Most tokens drafted per round. (default: 8)", valueName: "draft-max"))
    var draftMaxOption: Int?

    @Option(name: .customLong("draft-confidence"), help: ArgumentHelp(
        "A layer-skip draft stops when its top probability falls below this. (default: 0.5)", valueName: "draft-confidence"))
    var draftConfidenceOption: Float?

    var draft: String { draftOption ?? "auto" }
    var draftDomain: String { draftDomainOption ?? "general" }
    var draftMax: Int { draftMaxOption ?? 8 }
    var draftConfidence: Float { draftConfidenceOption ?? 0.5 }

    func validate() throws {
        if !speculative {
            let given = [("--draft", draftOption != nil), ("--draft-domain", draftDomainOption != nil),
                         ("--draft-max", draftMaxOption != nil), ("--draft-confidence", draftConfidenceOption != nil)]
            if let (name, _) = given.first(where: { $0.1 }) {
                throw ValidationError("\(name) applies to self-speculative decoding only: add --speculative, or leave it out")
            }
        }
        if draftMax < 1 { throw ValidationError("--draft-max must be at least 1, found \(draftMax)") }
        if !(draftConfidence >= 0 && draftConfidence <= 1) {
            throw ValidationError("--draft-confidence must be in [0, 1], found \(draftConfidence)")
        }
        if draftDomain.isEmpty || draftDomain.contains(where: { !($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
            throw ValidationError("--draft-domain must be letters, digits, '-', '_' or '.', found '\(draftDomain)'")
        }
    }

    static var plansDirectory: String { cacheDirectory("plans", override: "STRATA_PLANS") }

    /// Where the searched draft plan of `model` (a name or a .gguf path) for this domain is kept.
    func searchedPlanPath(model: String) -> String {
        Self.plansDirectory + "/\(ModelOptions.modelName(model))-\(draftDomain).json"
    }

    /// The plan an earlier `--draft layers` run saved, if there is a usable one. A damaged or
    /// foreign file is reported and ignored: it is only a cache.
    private func searchedPlan(model: String, config: ModelConfig) -> LayerPlan? {
        let path = searchedPlanPath(model: model)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let plan = try LayerPlan.load(path: path)
            try plan.validate(layerCount: config.layerCount)
            return plan
        } catch {
            printError("strata: ignoring the saved draft plan \(path): \(error)")
            return nil
        }
    }

    /// Saves the plan a `--draft layers` search found, replacing the one it started from.
    func saveSearchedPlan(_ found: (plan: LayerPlan, matchness: Double), model: String) throws {
        var plan = found.plan
        plan.model = ModelOptions.modelName(model)
        plan.notes = (plan.notes ?? "") + String(format: "; matchness %.2f on the last %d verified tokens, domain %@",
                                                 found.matchness, LayerSearchDrafter.matchnessWindow, draftDomain)
        let path = searchedPlanPath(model: model)
        try FileManager.default.createDirectory(atPath: Self.plansDirectory, withIntermediateDirectories: true)
        try plan.write(to: path, overwrite: true)
        printError(String(format: "[layer-skip search: best plan runs %d of %d layers' sublayers, matchness %.2f; saved to %@]",
                          plan.steps.count, plan.layerCount, found.matchness, path))
    }

    /// The draft vocabulary of `shortcut:E` without `:V`.
    static let defaultShortcutVocabulary = 16_384

    /// Where the shortcut fit of `model` after `depth` layers is kept.
    func shortcutFitPath(model: String, depth: Int) -> String {
        Self.plansDirectory + "/\(ModelOptions.modelName(model))-shortcut-\(depth).gguf"
    }

    /// The shortcut drafter of `shortcut:E[:V]`: the fit an earlier run saved, or a new fit on
    /// the bundled text (seconds to a minute) with the command's own transformer, saved for next time.
    private func shortcutDrafter(_ value: String, transformer: Transformer, name: String) throws -> ShortcutDrafter {
        let model = transformer.model
        let config = model.config
        let parts = value.split(separator: ":", omittingEmptySubsequences: false).dropFirst().map { Int($0) }
        guard (1...2).contains(parts.count), let depth = parts[0], depth >= 1, depth < config.layerCount,
              parts.count == 1 || (parts[1] ?? 0) >= 1 else {
            throw CommandFailure("--draft \(value): expected shortcut:E or shortcut:E:V with 1 <= E < \(config.layerCount) and V >= 1")
        }
        let vocabulary = parts.count == 2 ? parts[1]! : Self.defaultShortcutVocabulary
        let path = shortcutFitPath(model: name, depth: depth)
        if FileManager.default.fileExists(atPath: path) {
            do {
                let fit = try ShortcutDraftFit.load(path: path)
                guard fit.depth == depth, fit.map.matrix?.rows == config.hiddenSize,
                      fit.tokensByFrequency.allSatisfy({ $0 >= 0 && Int($0) < config.vocabularySize }) else {
                    throw CommandFailure("it was fitted for another model")
                }
                return fit.drafter(vocabulary: vocabulary)
            } catch {
                printError("strata: ignoring the saved shortcut fit \(path): \(error)")
            }
        }
        var transformer = transformer
        let tokens = model.tokenizer.encode(defaultPerplexityText, addSpecial: false, parseSpecial: false)
        let context = min(512, config.contextLength)
        let calibration = try CalibrationSet(tokens: tokens, context: context, firstToken: windowStartToken(for: model.tokenizer))
        printError("[shortcut draft: fitting the map after \(depth) layers on \(calibration.windows.count) windows of the bundled text]")
        let maps = try fitShortcutMaps(transformer: &transformer, windows: calibration.windows, depths: [depth], progress: printProgress)
        printError("")
        let fit = ShortcutDraftFit(
            depth: depth, map: LinearMap(name: "shortcut.map", site: .stream, map: maps.maps[depth]!, width: config.hiddenSize),
            tokensByFrequency: ShortcutDraftFit.tokensByFrequency(tokens, vocabularySize: config.vocabularySize),
            model: ModelOptions.modelName(name), text: "Pride and Prejudice, chapters 1-3 (bundled)")
        do {
            try FileManager.default.createDirectory(atPath: Self.plansDirectory, withIntermediateDirectories: true)
            try fit.write(to: path, overwrite: true)
            printError(String(format: "[shortcut draft: fitted in %.1f s; saved to %@]", maps.seconds, path))
        } catch {
            printError("strata: could not save the shortcut fit to \(path): \(error)")
        }
        return fit.drafter(vocabulary: vocabulary)
    }

    /// The speculation settings for the model `transformer` runs, or nil without `--speculative`.
    /// A new drafter needs only its name here.
    func parameters(for transformer: Transformer, name: String) throws -> SpeculationParameters? {
        let config = transformer.config
        guard speculative else { return nil }
        let drafter: any Drafter
        switch draft {
        case "auto": drafter = AutoDrafter(fallback: searchedPlan(model: name, config: config))
        case "ngram": drafter = NGramDrafter()
        case "layers": drafter = LayerSearchDrafter(seed: searchedPlan(model: name, config: config))
        case let value where value.hasPrefix("shortcut:"):
            drafter = try shortcutDrafter(value, transformer: transformer, name: name)
        case let value where value.hasPrefix("early-exit:"):
            guard let layers = Int(value.dropFirst("early-exit:".count)), layers >= 1, layers < config.layerCount else {
                throw CommandFailure("--draft \(value): expected early-exit:E with 1 <= E < \(config.layerCount)")
            }
            drafter = EarlyExitDrafter(layers: layers)
        default:
            guard FileManager.default.fileExists(atPath: draft) else {
                throw CommandFailure("--draft \(draft): no such plan file; the draft sources are auto, ngram, layers, early-exit:E, shortcut:E[:V] or a plan file")
            }
            let plan = try LayerPlan.load(path: draft)
            do { try plan.validate(layerCount: config.layerCount) } catch { throw CommandFailure("--draft \(draft): \(error)") }
            drafter = PlanDrafter(plan: plan)
        }
        return SpeculationParameters(drafter: drafter, maxDraft: draftMax, confidence: draftConfidence)
    }
}
