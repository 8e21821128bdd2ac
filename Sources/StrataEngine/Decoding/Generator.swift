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
    public var tokensPerSecond: Double { generationSeconds > 0 ? Double(generatedTokens) / generationSeconds : 0 }
}

/// What a generator yields.
public enum GenerationEvent: Sendable, Equatable {
    /// A generated token and the text it completes (possibly empty while a UTF-8 sequence is open).
    case token(TokenID, text: String)
    /// Generation ended; no more events follow.
    case finished(GenerationStats)
}

/// Settings of one generation.
public struct GenerationParameters: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var plan: LayerPlan?
    /// KV cache capacity; default: prompt + maxTokens, at most the model's context length.
    public var contextLength: Int?

    public init(maxTokens: Int = 128, sampling: SamplingParameters = .init(), plan: LayerPlan? = nil, contextLength: Int? = nil) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.plan = plan
        self.contextLength = contextLength
    }
}

/// The token loop as a plain synchronous iterator: prefill the prompt in one batch, then one
/// forward pass per generated token. Front ends wrap it in streams.
public struct Generator: IteratorProtocol, Sendable {
    public private(set) var transformer: Transformer
    public private(set) var cache: KVCache
    public private(set) var tokens: [TokenID]
    public private(set) var stats = GenerationStats()
    private let parameters: GenerationParameters
    private let plan: LayerPlan
    private var sampler: Sampler
    private var decoder: StreamingDecoder
    private var pendingLogits: Logits?
    private var finished = false
    private let clock = ContinuousClock()

    /// Prepares generation after `prompt` (which must not be empty).
    public init(transformer: Transformer, prompt: [TokenID], parameters: GenerationParameters) {
        self.transformer = transformer
        self.parameters = parameters
        let config = transformer.config
        plan = parameters.plan ?? .full(layerCount: config.layerCount)
        let wanted = parameters.contextLength ?? min(config.contextLength, prompt.count + parameters.maxTokens + 1)
        cache = transformer.makeCache(capacity: max(wanted, prompt.count + 1))
        tokens = prompt
        sampler = Sampler(parameters: parameters.sampling)
        decoder = StreamingDecoder(tokenizer: transformer.model.tokenizer)
        stats.promptTokens = prompt.count
    }

    public mutating func next() -> GenerationEvent? {
        guard !finished else { return nil }
        if let reason = pendingStop { return finish(reason) }
        do {
            if pendingLogits == nil {
                let start = clock.now
                pendingLogits = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache)
                stats.promptSeconds = seconds(since: start)
            }
            guard stats.generatedTokens < parameters.maxTokens, let logits = pendingLogits else { return finish(.length) }
            let start = clock.now
            defer { stats.generationSeconds += seconds(since: start) }
            let token = sampler.sample(logits: logits.last, history: tokens)
            if transformer.model.tokenizer.isEndOfGeneration(token) { return finish(.endOfGeneration) }
            tokens.append(token)
            stats.generatedTokens += 1
            let text = decoder.append(token)
            if stats.generatedTokens < parameters.maxTokens {
                if cache.count >= cache.capacity {
                    pendingStop = .context
                } else {
                    pendingLogits = try transformer.forward(tokens: [token], startPosition: cache.count, plan: plan, cache: &cache)
                }
            }
            return .token(token, text: text)
        } catch {
            return finish(.context)
        }
    }

    /// A stop decided after yielding the last token.
    private var pendingStop: StopReason?

    private mutating func finish(_ reason: StopReason) -> GenerationEvent {
        finished = true
        stats.stopReason = reason
        return .finished(stats)
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let duration = clock.now - start
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}
