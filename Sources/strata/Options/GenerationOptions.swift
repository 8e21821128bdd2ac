import ArgumentParser
import StrataEngine

/// Sampling and length options of `strata generate`.
struct GenerationOptions: ParsableArguments {
    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "Tokens to generate at most.")
    var maxTokens: Int = 128

    @Option(parsing: .unconditional, help: "Sampling temperature; 0 means greedy (argmax).")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Keep the K most likely tokens (0 disables).")
    var topK: Int = 40

    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Nucleus sampling: keep the most likely tokens up to probability P (1 disables).")
    var topP: Float = 0.95

    @Option(name: .customLong("min-p"), parsing: .unconditional, help: "Drop tokens less likely than P times the most likely one (0 disables).")
    var minP: Float = 0.05

    @Option(name: .customLong("repeat-penalty"), parsing: .unconditional, help: "Penalty for tokens among the last 64 (1 disables).")
    var repeatPenalty: Float = 1.0

    @Option(parsing: .unconditional, help: "Random seed; the same seed and options reproduce the same text (default: random).")
    var seed: UInt64?

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be 0 or more, found \(maxTokens)") }
        if !(temperature >= 0) { throw ValidationError("--temperature must be 0 or more, found \(temperature)") }
        if topK < 0 { throw ValidationError("--top-k must be 0 or more, found \(topK)") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1], found \(topP)") }
        if !(minP >= 0 && minP <= 1) { throw ValidationError("--min-p must be in [0, 1], found \(minP)") }
        if !(repeatPenalty > 0) { throw ValidationError("--repeat-penalty must be positive, found \(repeatPenalty)") }
    }

    var sampling: SamplingParameters {
        SamplingParameters(
            temperature: temperature, topK: topK, topP: topP, minP: minP, repeatPenalty: repeatPenalty,
            seed: seed ?? UInt64.random(in: 0...UInt64.max))
    }
}
