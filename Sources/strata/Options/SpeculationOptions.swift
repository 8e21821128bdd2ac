import ArgumentParser
import Foundation
import StrataEngine

/// `--speculative` and the draft options of `strata generate` and `strata bench`.
struct SpeculationOptions: ParsableArguments {
    @Flag(help: "Self-speculative decoding: drafts are verified by the full model, so the output is exactly what plain decoding gives (greedy: the same tokens; sampling: the same distribution).")
    var speculative = false

    @Option(help: "Draft source: auto (n-gram lookup when the text has a match, else plain), ngram, early-exit:E (the first E layers), or a plan file from `strata plan`.")
    var draft: String = "auto"

    @Option(name: .customLong("draft-max"), help: "Most tokens drafted per round.")
    var draftMax: Int = 8

    @Option(name: .customLong("draft-confidence"), help: "A layer-skip draft stops when its top probability falls below this.")
    var draftConfidence: Float = 0.5

    func validate() throws {
        if draftMax < 1 { throw ValidationError("--draft-max must be at least 1, found \(draftMax)") }
        if !(draftConfidence >= 0 && draftConfidence <= 1) {
            throw ValidationError("--draft-confidence must be in [0, 1], found \(draftConfidence)")
        }
    }

    /// The speculation settings for a model, or nil without `--speculative`.
    func parameters(for config: ModelConfig) throws -> SpeculationParameters? {
        guard speculative else { return nil }
        let source: DraftSource
        switch draft {
        case "auto": source = .auto(fallback: nil)
        case "ngram": source = .ngram
        case "layers":
            throw CommandFailure("--draft layers (on-the-fly layer-skip search) is not implemented yet; give a plan file made by `strata plan`, early-exit:E, ngram or auto")
        case let value where value.hasPrefix("early-exit:"):
            guard let layers = Int(value.dropFirst("early-exit:".count)), layers >= 1, layers < config.layerCount else {
                throw CommandFailure("--draft \(value): expected early-exit:E with 1 <= E < \(config.layerCount)")
            }
            source = .earlyExit(layers: layers)
        default:
            let plan = try LayerPlan.load(path: draft)
            do { try plan.validate(layerCount: config.layerCount) } catch { throw CommandFailure("--draft \(draft): \(error)") }
            source = .plan(plan)
        }
        return SpeculationParameters(draft: source, maxDraft: draftMax, confidence: draftConfidence)
    }
}
