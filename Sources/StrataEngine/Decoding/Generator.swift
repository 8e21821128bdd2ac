import StrataKernels
import StrataTokenizer

/// Why generation stopped.
public enum StopReason: String, Sendable, Codable {
    /// The model produced an end-of-generation token.
    case endOfGeneration = "eos"
    /// `maxTokens` were generated.
    case length
    /// The KV cache (context) is full.
    case context
}

/// Timings and counts of one generation.
public struct GenerationStats: Sendable, Codable, Equatable {
    public var promptTokens: Int = 0
    public var generatedTokens: Int = 0
    public var promptSeconds: Double = 0
    public var generationSeconds: Double = 0
    public var stopReason: StopReason = .length

    public init() {}

    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    /// Generated tokens per second, counting from the first generated token's forward pass.
    /// The count includes the first generated token, which the prompt pass decided (its time is
    /// in `promptSeconds`); `decodedTokens / generationSeconds` leaves it out.
    public var tokensPerSecond: Double { generationSeconds > 0 ? Double(generatedTokens) / generationSeconds : 0 }

    /// Tokens decided in the timed decoding rounds (`generationSeconds`): every generated token
    /// but the first, which the prompt pass decides, plus the end-of-generation token when one
    /// stopped generation. Plain decoding runs one forward pass for each.
    public var decodedTokens: Int {
        max(0, generatedTokens - 1 + (stopReason == .endOfGeneration ? 1 : 0))
    }
}

/// Why generation cannot go on.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    /// The model's next-token logits after `position` tokens hold NaN or infinity: its weights
    /// or metadata are broken, and any token chosen from them would be arbitrary.
    case nonFiniteLogits(position: Int)
    /// The prompt has no tokens: the first generated token is predicted from the last prompt token.
    case emptyPrompt
    /// The prompt has `promptTokens` tokens, and the context (`GenerationParameters.contextLength`
    /// or the model's) holds `contextLength`: at most `contextLength - 1` prompt tokens fit, as
    /// the last position is for the first generated token.
    case promptExceedsContext(promptTokens: Int, contextLength: Int)
    /// An early-exit draft after `layers` layers of a model that has `layerCount`.
    case earlyExitBeyondModel(layers: Int, layerCount: Int)
    /// A shortcut draft (or its fit file) that cannot be used, and why.
    case invalidShortcut(String)

    public var description: String {
        switch self {
        case .nonFiniteLogits(let position):
            "the model's logits after \(position) tokens are not finite (NaN or infinity): its weights or metadata are broken"
        case .emptyPrompt:
            "the prompt is empty: generation needs at least one prompt token to predict from"
        case .promptExceedsContext(let promptTokens, let contextLength):
            "the prompt has \(promptTokens) tokens; the context is \(contextLength), so at most \(max(0, contextLength - 1)) prompt tokens fit (one position is for the first generated token)"
        case .earlyExitBeyondModel(let layers, let layerCount):
            "an early-exit draft after \(layers) layers: the model has \(layerCount) layers, so the draft must keep 1 to \(layerCount)"
        case .invalidShortcut(let reason):
            "shortcut draft: \(reason)"
        }
    }
}

/// What a generator yields.
public enum GenerationEvent: Sendable, Equatable {
    /// A generated token and the text it completes (possibly empty while a UTF-8 sequence is open).
    case token(TokenID, text: String)
    /// Text completed without a new token: when generation ends with a character the last
    /// tokens left incomplete, its bytes as U+FFFD, just before `.finished`. The `.token` texts
    /// and this one together are the generated tokens decoded.
    case text(String)
    /// Generation ended; no more events follow.
    case finished(GenerationStats)
}

/// Settings of one generation.
public struct GenerationParameters: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// The plan of the model that decides the output (default: the full model).
    public var plan: LayerPlan?
    /// KV cache capacity; default: prompt + maxTokens, at most the model's context length.
    public var contextLength: Int?
    /// Self-speculative decoding, or nil for plain decoding. The output follows exactly the
    /// same distribution (greedy: the same tokens) either way.
    public var speculation: SpeculationParameters?

    public init(
        maxTokens: Int = 128, sampling: SamplingParameters = .init(), plan: LayerPlan? = nil,
        contextLength: Int? = nil, speculation: SpeculationParameters? = nil
    ) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.plan = plan
        self.contextLength = contextLength
        self.speculation = speculation
    }
}

/// The token loop as a plain synchronous iterator: prefill the prompt in one batch, then
/// rounds that each decide one or more tokens (one forward pass per token when decoding
/// plainly; draft + one batched verification when speculating). Front ends wrap it in streams.
/// `next()` throws what the forward pass throws, so a failure is never reported as a stop.
public struct Generator: Sendable {
    public private(set) var transformer: Transformer
    public private(set) var cache: KVCache
    /// The prompt and every token yielded so far.
    public private(set) var tokens: [TokenID]
    public private(set) var stats = GenerationStats()
    public var speculationStats: SpeculationStats { speculator?.stats ?? SpeculationStats() }
    /// With `--draft layers`: the best draft plan the search found and its matchness (the share
    /// of recently verified tokens it predicted), to persist for a warm start next time.
    public var searchedDraftPlan: (plan: LayerPlan, matchness: Double)? { speculator?.searchedPlan }
    let parameters: GenerationParameters
    let plan: LayerPlan
    var sampler: Sampler
    private var decoder: StreamingDecoder
    /// Tokens the model has decided but not yet yielded.
    private var ready: [TokenID] = []
    private var readyIndex = 0
    private var prefilled = false
    private var finished = false
    /// `.finished`, held back while the `.text` that ends the stream goes first.
    private var finalEvent: GenerationEvent?
    private var speculator: Speculator?
    private let clock = ContinuousClock()

    /// Prepares generation after `prompt`. The first `next()` throws `GenerationError` when the
    /// prompt is empty or does not fit the context, and what the drafter's `prepare(for:)` throws
    /// (for example an early exit beyond the model's layers).
    public init(transformer: Transformer, prompt: [TokenID], parameters: GenerationParameters) {
        self.transformer = transformer
        self.parameters = parameters
        let config = transformer.config
        plan = parameters.plan ?? .full(layerCount: config.layerCount)
        // maxTokens may be anything up to Int.max ("until the context is full")
        let wanted = parameters.contextLength
            ?? min(config.contextLength, prompt.count + min(parameters.maxTokens, config.contextLength) + 1)
        cache = transformer.makeCache(capacity: max(wanted, prompt.count + 1))
        tokens = prompt
        sampler = Sampler(parameters: parameters.sampling)
        decoder = StreamingDecoder(tokenizer: transformer.model.tokenizer)
        stats.promptTokens = prompt.count
    }

    /// The next event, or nil after `.finished`. Throws when a forward pass fails (for example a
    /// token id the model's embedding has no row for); generation cannot go on after that.
    public mutating func next() throws -> GenerationEvent? {
        guard !finished else { return nil }
        if let finalEvent {
            finished = true
            return finalEvent
        }
        do {
            if !prefilled {
                try begin()
                let start = clock.now
                let logits = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache)
                try Self.checkFinite(logits.last, position: tokens.count)
                ready = [sampler.sample(logits: logits.last, history: tokens)]
                prefilled = true
                stats.promptSeconds = seconds(since: start)
            }
            guard stats.generatedTokens < parameters.maxTokens else { return finish(.length) }
            if readyIndex == ready.count {
                guard cache.count < cache.capacity else { return finish(.context) }
                let start = clock.now
                ready = try decideTokens()
                readyIndex = 0
                stats.generationSeconds += seconds(since: start)
            }
            let token = ready[readyIndex]
            readyIndex += 1
            if transformer.model.tokenizer.isEndOfGeneration(token) { return finish(.endOfGeneration) }
            tokens.append(token)
            stats.generatedTokens += 1
            return .token(token, text: decoder.append(token))
        } catch {
            finished = true
            throw error
        }
    }

    /// Refuses what generation cannot start from, and prepares the speculator.
    private mutating func begin() throws {
        guard !tokens.isEmpty else { throw GenerationError.emptyPrompt }
        let contextLength = parameters.contextLength ?? transformer.config.contextLength
        guard tokens.count < contextLength else {
            throw GenerationError.promptExceedsContext(promptTokens: tokens.count, contextLength: contextLength)
        }
        speculator = try parameters.speculation.map { try Speculator(parameters: $0, config: transformer.config) }
    }

    /// One round: the last yielded token is not in the cache yet; process it (and any draft)
    /// and return the tokens the model decides next (at least one).
    private mutating func decideTokens() throws -> [TokenID] {
        if var speculator {
            defer { self.speculator = speculator }
            let remaining = parameters.maxTokens - stats.generatedTokens
            return try speculator.round(
                transformer: &transformer, cache: &cache, tokens: tokens, plan: plan, sampler: &sampler,
                limit: min(remaining, cache.capacity - cache.count) - 1)
        }
        let logits = try transformer.forward(tokens: [tokens[tokens.count - 1]], startPosition: cache.count, plan: plan, cache: &cache)
        try Self.checkFinite(logits.last, position: tokens.count)
        return [sampler.sample(logits: logits.last, history: tokens)]
    }

    /// Speculative rounds are not checked: the prompt pass, which every mode runs, already is.
    private static func checkFinite(_ logits: ArraySlice<Float>, position: Int) throws(GenerationError) {
        guard FloatKernels.allFinite(logits) else { throw .nonFiniteLogits(position: position) }
    }

    private mutating func finish(_ reason: StopReason) -> GenerationEvent {
        stats.stopReason = reason
        let tail = decoder.finish()
        guard tail.isEmpty else {
            finalEvent = .finished(stats)
            return .text(tail)
        }
        finished = true
        return .finished(stats)
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        (clock.now - start).seconds
    }
}
