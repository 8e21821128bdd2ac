import StrataEngine
import StrataTokenizer

/// Settings of `runSpeculativeBenchmark`.
public struct SpeculativeBenchmarkOptions: Sendable {
    /// How the speculative runs draft.
    public var speculation: SpeculationParameters
    /// Tokens generated per run, the same for plain and speculative decoding.
    public var generatedTokens = 128
    /// Timed runs of every prompt in each mode, after one untimed warm-up.
    public var repetitions = 2
    /// The plan of the model that decides the output in both modes (default: the full model).
    public var plan: LayerPlan?
    /// Also measure the verify cost of every draft length (one sample of each after every prompt
    /// and repetition; about 4 s each on a 1.5B model) and, from it, the copy-draft ceiling of
    /// each prompt (`CopyDraftCeiling`).
    public var measuresCopyCeiling = true

    public init(speculation: SpeculationParameters = SpeculationParameters()) {
        self.speculation = speculation
    }
}

/// A benchmark prompt that cannot be run on the model.
public struct SpeculativeBenchmarkError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
}

/// Decodes every prompt greedily, plainly and speculatively, and compares speed and output.
///
/// Chat prompts are rendered with the model's chat template (`LanguageModel.promptTokens`).
/// For each repetition and prompt the two modes run back to back, alternating which goes first
/// (by repetition and by prompt) so that drift in a shared machine's speed falls on both. Only
/// decoding is timed: the prompt pass and its first token are left out of both modes alike.
public func runSpeculativeBenchmark(
    transformer: Transformer, prompts: [BenchmarkPrompt], options: SpeculativeBenchmarkOptions,
    progress: ((String) -> Void)? = nil
) throws -> SpeculativeBenchmarkReport {
    let model = transformer.model
    var tokenized: [[TokenID]] = []
    for (index, prompt) in prompts.enumerated() {
        let name = "prompt \(index + 1) (\(prompt.type.rawValue))"
        let tokens: [TokenID]
        do {
            tokens = try model.promptTokens(prompt.prompt, chat: prompt.type == .chat)
        } catch {
            throw SpeculativeBenchmarkError(description: "\(name): \(error)")
        }
        guard !tokens.isEmpty else { throw SpeculativeBenchmarkError(description: "\(name) tokenizes to nothing") }
        guard tokens.count < model.config.contextLength else {
            throw SpeculativeBenchmarkError(description: "\(name) has \(tokens.count) tokens; the model's context is \(model.config.contextLength)")
        }
        tokenized.append(tokens)
    }

    // `--draft layers`: the plan searched on one prompt seeds the next prompt of its type, as a
    // persisted plan seeds the next `strata generate` of its domain.
    var searchedPlans: [PromptType: LayerPlan] = [:]
    func decode(
        _ prompt: [TokenID], type: PromptType, speculative: Bool, maxTokens: Int
    ) throws -> (tokens: [TokenID], timing: DecodeTiming, speculation: SpeculationStats) {
        var speculation = options.speculation
        if let search = speculation.drafter as? LayerSearchDrafter, search.seed == nil, let plan = searchedPlans[type] {
            speculation.drafter = LayerSearchDrafter(seed: plan)
        }
        var generator = Generator(
            transformer: transformer, prompt: prompt,
            parameters: GenerationParameters(
                maxTokens: maxTokens, sampling: .greedy, plan: options.plan,
                speculation: speculative ? speculation : nil))
        defer { if let found = generator.searchedDraftPlan { searchedPlans[type] = found.plan } }
        var tokens: [TokenID] = []
        var stats = GenerationStats()
        while let event = try generator.next() {
            switch event {
            case .token(let token, _): tokens.append(token)
            case .text: break
            case .finished(let final): stats = final
            }
        }
        return (tokens, DecodeTiming(tokens: stats.decodedTokens, seconds: stats.generationSeconds), generator.speculationStats)
    }

    // Warm-up: touch the weights and let the worker pool settle before anything is timed.
    if let first = tokenized.first {
        progress?("warm-up")
        for speculative in [false, true] {
            _ = try decode(first, type: prompts[0].type, speculative: speculative, maxTokens: min(16, options.generatedTokens))
        }
    }

    var plainOutputs: [[TokenID]] = Array(repeating: [], count: tokenized.count)
    let verifySizes = options.measuresCopyCeiling ? Array(1...(max(0, options.speculation.maxDraft) + 1)) : []
    var verifyRatios: [Int: [Double]] = [:]
    var results = zip(prompts, tokenized).map { prompt, tokens in
        SpeculativePromptResult(type: prompt.type, prompt: prompt.prompt, promptTokens: tokens.count, generatedTokens: 0,
                                plain: [], speculative: [], speculation: SpeculationStats(), identicalOutputs: true)
    }
    for repetition in 0..<options.repetitions {
        for (index, tokens) in tokenized.enumerated() {
            var outputs: [Bool: [TokenID]] = [:]
            let plainFirst = (repetition + index) % 2 == 0
            for speculative in plainFirst ? [false, true] : [true, false] {
                progress?("run \(repetition + 1)/\(options.repetitions), prompt \(index + 1)/\(tokenized.count) (\(prompts[index].type.rawValue)), \(speculative ? "speculative" : "plain")")
                let run = try decode(tokens, type: prompts[index].type, speculative: speculative, maxTokens: options.generatedTokens)
                outputs[speculative] = run.tokens
                if speculative {
                    results[index].speculative.append(run.timing)
                    results[index].speculation.add(run.speculation)
                } else {
                    results[index].plain.append(run.timing)
                }
            }
            let plain = outputs[false] ?? []
            let speculative = outputs[true] ?? []
            if repetition == 0 {
                results[index].generatedTokens = plain.count
                plainOutputs[index] = plain
            }
            if options.measuresCopyCeiling {
                // One sample of every verify size per prompt and repetition, next to the runs it
                // describes, so that the machine's drift falls on the curve as on the runs.
                progress?("run \(repetition + 1)/\(options.repetitions), prompt \(index + 1)/\(tokenized.count), verify costs")
                let sample = try verifyCostSample(transformer: transformer, context: tokens, continuation: plain,
                                                  plan: options.plan, sizes: verifySizes)
                for (size, ratio) in sample { verifyRatios[size, default: []].append(ratio) }
            }
            if plain != speculative {
                results[index].identicalOutputs = false
                let difference = zip(plain, speculative).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(plain.count, speculative.count)
                results[index].firstDifference = min(results[index].firstDifference ?? difference, difference)
            }
        }
    }
    var verifyCurve: [Int: Double] = [:]
    if options.measuresCopyCeiling {
        verifyCurve = verifyRatios.mapValues { Measurement(samples: $0).median }
        // No sample fitted the context: no curve, and no ceiling rather than a meaningless one.
        if verifyCurve[1] != nil {
            for index in results.indices {
                results[index].copyCeilingSteps = CopyDraftCeiling.cost(
                    prompt: tokenized[index], output: plainOutputs[index], maximumDraft: verifySizes.count - 1
                ) { verifyCurve[$0] ?? .infinity }
            }
        }
    }
    return SpeculativeBenchmarkReport(
        draftSource: options.speculation.drafter.description, generatedTokens: options.generatedTokens,
        repetitions: options.repetitions, prompts: results, verifyCurve: verifyCurve)
}

/// Times one forward pass of `plan` (default: the full model) over k tokens, with logits for
/// every row as verification needs them, for each k in `sizes`, on top of `context` plus half
/// of `continuation` in the cache (the middle of that prompt's decode); returns each time over
/// that of one token, or nothing if the context does not fit.
func verifyCostSample(
    transformer: Transformer, context: [TokenID], continuation: [TokenID], plan: LayerPlan?, sizes: [Int]
) throws -> [Int: Double] {
    var transformer = transformer
    let config = transformer.config
    let plan = plan ?? .full(layerCount: config.layerCount)
    let prefix = context + continuation.prefix(continuation.count / 2)
    let largest = sizes.max() ?? 1
    guard prefix.count + largest <= config.contextLength, sizes.contains(1) else { return [:] }
    // The tokens verified: what followed the prefix, repeated if the text ended sooner.
    let following = Array(continuation.dropFirst(continuation.count / 2))
    let batch = (0..<largest).map { following.isEmpty ? prefix[prefix.count - 1] : following[$0 % following.count] }
    var cache = transformer.makeCache(capacity: prefix.count + largest)
    _ = try transformer.forward(tokens: prefix, startPosition: 0, plan: plan, cache: &cache, logits: .none)
    var seconds: [Int: Double] = [:]
    for size in sizes {
        // Small passes take milliseconds: time several to rise above clock noise.
        seconds[size] = try verifyPassSeconds(transformer: &transformer, cache: &cache, batch: Array(batch.prefix(size)),
                                              position: prefix.count, plan: plan, passes: max(1, 4 / size))
    }
    guard let single = seconds[1], single > 0 else { return [:] }
    return seconds.mapValues { $0 / single }
}
