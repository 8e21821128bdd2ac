import Foundation
import StrataEngine

/// One timed decode: the tokens decided by decoding rounds and the seconds those rounds took
/// (the prompt pass is not included).
public struct DecodeTiming: Sendable, Codable, Equatable {
    /// `GenerationStats.decodedTokens`.
    public var tokens: Int
    /// `GenerationStats.generationSeconds`.
    public var seconds: Double

    public init(tokens: Int, seconds: Double) {
        self.tokens = tokens
        self.seconds = seconds
    }
}

/// Plain and speculative decoding of one prompt, over every repetition.
public struct SpeculativePromptResult: Sendable, Equatable, Encodable {
    public var type: PromptType
    /// The prompt as given (for chat, the user message before the template is applied).
    public var prompt: String
    public var promptTokens: Int
    /// Tokens plain decoding generated (the first repetition).
    public var generatedTokens: Int
    /// One entry per repetition.
    public var plain: [DecodeTiming]
    public var speculative: [DecodeTiming]
    /// Speculation counts and times, summed over the repetitions.
    public var speculation: SpeculationStats
    /// Whether every speculative run produced exactly the token ids of the plain run it was
    /// paired with. Greedy speculation is lossless, so false is a bug.
    public var identicalOutputs: Bool
    /// The first token index at which a speculative run differed, if one did.
    public var firstDifference: Int?
    /// `CopyDraftCeiling.cost` of the plain output (plain steps to decode it once with the best
    /// copied drafts), nil when not computed.
    public var copyCeilingSteps: Double?

    public init(type: PromptType, prompt: String, promptTokens: Int, generatedTokens: Int, plain: [DecodeTiming],
                speculative: [DecodeTiming], speculation: SpeculationStats, identicalOutputs: Bool, firstDifference: Int? = nil) {
        self.type = type
        self.prompt = prompt
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.plain = plain
        self.speculative = speculative
        self.speculation = speculation
        self.identicalOutputs = identicalOutputs
        self.firstDifference = firstDifference
    }

    /// The prompt's figures (tokens/s of both modes, speedup, acceptance, cost model), as for
    /// a group of prompts.
    public var summary: SpeculativeSummary { SpeculativeSummary(results: [self]) }

    enum CodingKeys: String, CodingKey {
        case type, prompt, plain, speculative
        case promptTokens = "prompt_tokens"
        case generatedTokens = "generated_tokens"
        case firstDifference = "first_difference"
    }

    /// The summary's keys, then the prompt and its runs.
    public func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try container.encode(prompt, forKey: .prompt)
        try container.encode(promptTokens, forKey: .promptTokens)
        try container.encode(generatedTokens, forKey: .generatedTokens)
        try container.encode(plain, forKey: .plain)
        try container.encode(speculative, forKey: .speculative)
        try container.encodeIfPresent(firstDifference, forKey: .firstDifference)
    }

    /// Tokens one plain run decided in its timed rounds (the first comes from the prompt pass).
    var decodedTokens: Int { max(0, generatedTokens - 1) }
}

/// The cost model of methods.md section 7 with its inputs as measured. Costs are in units of
/// T, the time of one plain decoding step: c·T per draft step, v(k)·T per verification of k
/// tokens; α is the acceptance rate and γ the draft length.
public struct CostModelFigures: Sendable, Equatable, Encodable {
    /// T: plain decoding seconds over plain decoded tokens (one forward pass each).
    public var plainStepSeconds: Double
    /// c: mean seconds of one draft-plan step over T; 0 when the draft ran no model pass
    /// (n-gram lookup costs next to nothing).
    public var draftStepCost: Double
    /// v(k): mean seconds of verifying k tokens in one pass over T, by k.
    public var verifyCost: [Int: Double]
    /// Verification passes by k (k − 1 is the round's draft length γ; k = 1 drafted nothing).
    public var verifyPasses: [Int: Int]
    /// α: accepted over drafted tokens.
    public var acceptanceRate: Double
    /// γ: drafted tokens per round that drafted any.
    public var meanDraftLength: Double
    /// The speedup the cost model predicts from these figures (see `init`), nil without a
    /// plain step time.
    public var predictedSpeedup: Double?
    /// Speculative over plain tokens per second, as measured.
    public var measuredSpeedup: Double

    /// Computes the figures from summed speculation counts and the plain decoding time.
    ///
    /// The prediction applies the formula to the rounds as they ran: a round that verified k
    /// tokens is expected to yield (1 − α^k) / (1 − α) tokens (1 when k = 1), and the rounds
    /// cost their draft steps at c plus v(k) each. Predicted speedup = expected tokens over
    /// total cost, both in plain steps. It differs from the measured speedup where acceptances
    /// are not independent with a constant α, and by overheads outside the forward passes.
    public init(speculation: SpeculationStats, plainStepSeconds: Double, measuredSpeedup: Double) {
        let timings = speculation.timings
        self.plainStepSeconds = plainStepSeconds
        self.measuredSpeedup = measuredSpeedup
        acceptanceRate = speculation.acceptanceRate
        verifyPasses = timings.verifyPasses
        let draftingRounds = timings.verifyPasses.filter { $0.key > 1 }.values.reduce(0, +)
        meanDraftLength = draftingRounds > 0 ? Double(speculation.drafted) / Double(draftingRounds) : 0
        guard plainStepSeconds > 0 else {
            draftStepCost = 0
            verifyCost = [:]
            predictedSpeedup = nil
            return
        }
        draftStepCost = (timings.meanDraftStepSeconds ?? 0) / plainStepSeconds
        verifyCost = Dictionary(uniqueKeysWithValues: timings.verifyPasses.keys.compactMap { size in
            timings.meanVerifySeconds(size: size).map { (size, $0 / plainStepSeconds) }
        })
        let alpha = acceptanceRate
        func expectedTokens(verifying size: Int) -> Double {
            alpha < 1 ? (1 - pow(alpha, Double(size))) / (1 - alpha) : Double(size)
        }
        let expected = timings.verifyPasses.reduce(0) { $0 + Double($1.value) * expectedTokens(verifying: $1.key) }
        let cost = (timings.draftSeconds + timings.verifySeconds.values.reduce(0, +)) / plainStepSeconds
        predictedSpeedup = cost > 0 ? expected / cost : nil
    }

    enum CodingKeys: String, CodingKey {
        case plainStepMilliseconds = "plain_step_milliseconds"
        case draftStepCost = "draft_step_cost"
        case verifyCost = "verify_cost"
        case verifyPasses = "verify_passes_by_size"
        case acceptanceRate = "acceptance_rate"
        case meanDraftLength = "mean_draft_length"
        case predictedSpeedup = "predicted_speedup"
        case measuredSpeedup = "measured_speedup"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(plainStepSeconds * 1000, forKey: .plainStepMilliseconds)
        try container.encode(draftStepCost, forKey: .draftStepCost)
        try container.encode(verifyCost, forKey: .verifyCost)
        try container.encode(verifyPasses, forKey: .verifyPasses)
        try container.encode(acceptanceRate, forKey: .acceptanceRate)
        try container.encode(meanDraftLength, forKey: .meanDraftLength)
        try container.encodeIfPresent(predictedSpeedup, forKey: .predictedSpeedup)
        try container.encode(measuredSpeedup, forKey: .measuredSpeedup)
    }
}

/// Plain against speculative decoding over a set of prompt results (all, or one type).
public struct SpeculativeSummary: Sendable, Equatable, Encodable {
    public var prompts: Int
    /// Decoded tokens and decoding seconds summed over every prompt and repetition.
    public var plainTokens: Int
    public var plainSeconds: Double
    public var speculativeTokens: Int
    public var speculativeSeconds: Double
    /// Speculation counts and times summed.
    public var speculation: SpeculationStats
    /// Whether every prompt's outputs were identical.
    public var identicalOutputs: Bool
    /// The speedup the best copied (n-gram) drafts could give on these plain outputs at the
    /// measured verify costs (`CopyDraftCeiling`): decoded tokens over the ceiling's plain steps,
    /// pooled; nil when not computed.
    public var copyDraftCeiling: Double?

    /// Pools `results`: tokens per second are total tokens over total decoding time per mode.
    public init(results: [SpeculativePromptResult]) {
        prompts = results.count
        let plain = results.flatMap(\.plain)
        let speculative = results.flatMap(\.speculative)
        plainTokens = plain.reduce(0) { $0 + $1.tokens }
        plainSeconds = plain.reduce(0) { $0 + $1.seconds }
        speculativeTokens = speculative.reduce(0) { $0 + $1.tokens }
        speculativeSeconds = speculative.reduce(0) { $0 + $1.seconds }
        speculation = results.reduce(into: SpeculationStats()) { $0.add($1.speculation) }
        identicalOutputs = results.allSatisfy(\.identicalOutputs)
        let bounded = results.filter { $0.copyCeilingSteps != nil }
        let ceilingSteps = bounded.reduce(0) { $0 + ($1.copyCeilingSteps ?? 0) }
        copyDraftCeiling = bounded.isEmpty || ceilingSteps <= 0
            ? nil : Double(bounded.reduce(0) { $0 + $1.decodedTokens }) / ceilingSteps
    }

    public var plainTokensPerSecond: Double { plainSeconds > 0 ? Double(plainTokens) / plainSeconds : 0 }
    public var speculativeTokensPerSecond: Double { speculativeSeconds > 0 ? Double(speculativeTokens) / speculativeSeconds : 0 }
    /// Speculative over plain tokens per second.
    public var speedup: Double { plainTokensPerSecond > 0 ? speculativeTokensPerSecond / plainTokensPerSecond : 0 }
    /// The cost model's inputs and prediction; T is the mean plain decoding step.
    public var costModel: CostModelFigures {
        CostModelFigures(speculation: speculation, plainStepSeconds: plainTokens > 0 ? plainSeconds / Double(plainTokens) : 0,
                         measuredSpeedup: speedup)
    }

    enum CodingKeys: String, CodingKey {
        case prompts, speedup, speculation
        case plainTokens = "plain_tokens"
        case plainSeconds = "plain_seconds"
        case speculativeTokens = "speculative_tokens"
        case speculativeSeconds = "speculative_seconds"
        case plainTokensPerSecond = "plain_tokens_per_second"
        case speculativeTokensPerSecond = "speculative_tokens_per_second"
        case identicalOutputs = "identical_outputs"
        case acceptanceRate = "acceptance_rate"
        case meanAcceptedPerVerify = "mean_accepted_per_verify"
        case verifyPasses = "verify_passes"
        case costModel = "cost_model"
        case copyDraftCeiling = "copy_draft_ceiling"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(prompts, forKey: .prompts)
        try container.encode(plainTokens, forKey: .plainTokens)
        try container.encode(plainSeconds, forKey: .plainSeconds)
        try container.encode(speculativeTokens, forKey: .speculativeTokens)
        try container.encode(speculativeSeconds, forKey: .speculativeSeconds)
        try container.encode(plainTokensPerSecond, forKey: .plainTokensPerSecond)
        try container.encode(speculativeTokensPerSecond, forKey: .speculativeTokensPerSecond)
        try container.encode(speedup, forKey: .speedup)
        try container.encode(identicalOutputs, forKey: .identicalOutputs)
        try container.encode(speculation.acceptanceRate, forKey: .acceptanceRate)
        try container.encode(speculation.meanAcceptedPerVerify, forKey: .meanAcceptedPerVerify)
        try container.encode(speculation.verifyPasses, forKey: .verifyPasses)
        try container.encode(speculation, forKey: .speculation)
        try container.encode(costModel, forKey: .costModel)
        try container.encodeIfPresent(copyDraftCeiling, forKey: .copyDraftCeiling)
    }
}

/// What `runSpeculativeBenchmark` measured: every prompt, pooled overall and by prompt type.
/// Encoded as one object: the overall summary's keys, then `by_type`, `prompts` and the settings.
public struct SpeculativeBenchmarkReport: Sendable, Equatable, Encodable {
    /// The draft source, as its drafter's `description` names it.
    public var draftSource: String
    public var generatedTokens: Int
    public var repetitions: Int
    public var prompts: [SpeculativePromptResult]
    public var overall: SpeculativeSummary
    /// One summary for each type that has prompts.
    public var byType: [PromptType: SpeculativeSummary]
    /// Time of verifying k tokens in one pass over that of one token, by k up to the draft limit
    /// + 1: the median of samples taken apart from the decoding runs, one after each prompt and
    /// repetition (the cost model's figures cover only the sizes the runs happened to use).
    /// Empty when not measured.
    public var verifyCurve: [Int: Double]

    public init(draftSource: String, generatedTokens: Int, repetitions: Int, prompts: [SpeculativePromptResult],
                verifyCurve: [Int: Double] = [:]) {
        self.verifyCurve = verifyCurve
        self.draftSource = draftSource
        self.generatedTokens = generatedTokens
        self.repetitions = repetitions
        self.prompts = prompts
        overall = SpeculativeSummary(results: prompts)
        byType = Dictionary(grouping: prompts, by: \.type).mapValues { SpeculativeSummary(results: $0) }
    }

    /// The prompts whose speculative output was not the plain output.
    public var differingPrompts: [SpeculativePromptResult] { prompts.filter { !$0.identicalOutputs } }

    enum CodingKeys: String, CodingKey {
        case prompts, repetitions
        case draftSource = "draft_source"
        case generatedTokens = "gen_tokens"
        case byType = "by_type"
        case verifyCurve = "verify_curve"
    }

    public func encode(to encoder: any Encoder) throws {
        try overall.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(draftSource, forKey: .draftSource)
        try container.encode(generatedTokens, forKey: .generatedTokens)
        try container.encode(repetitions, forKey: .repetitions)
        try container.encode(byType, forKey: .byType)
        if !verifyCurve.isEmpty { try container.encode(verifyCurve, forKey: .verifyCurve) }
        try container.encode(prompts, forKey: .prompts)
    }
}
