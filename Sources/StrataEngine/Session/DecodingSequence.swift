import StrataKernels
import StrataTokenizer

/// One request's state inside a `BatchDecoder`: its tokens, its KV cache, its sampler and
/// speculator, and the text it has released. The token rules are `Generator`'s: the prompt is
/// processed first and its last row decides the first token; each later round processes the
/// pending token (and any drafts) and decides one or more tokens; an end-of-generation token
/// ends it uncounted; `maxTokens` and the context bound it.
struct DecodingSequence: Sendable {
    let id: Int
    /// The prompt and every token decided so far; the last one is pending (not in the cache)
    /// once the prompt is processed.
    private(set) var tokens: [TokenID]
    let promptCount: Int
    var cache: KVCache
    let plan: LayerPlan
    let maxTokens: Int
    let contextLength: Int
    let cachedPromptTokens: Int
    private var sampler: Sampler
    private var speculator: Speculator?
    private let tokenizer: Tokenizer
    private var decoder: StreamingDecoder
    private var stopMatcher: StopMatcher
    /// This round's drafts and the position of its pending token, between `segment` and `accept`.
    private var draft: (proposal: Draft, position: Int)?
    /// Text released and tokens decided since the owner last took them (`takeOutput`).
    private var outputText = ""
    private var outputTokens = 0
    private(set) var generated = 0
    private(set) var finishReason: FinishReason?
    let deadline: ContinuousClock.Instant?
    let enqueued: ContinuousClock.Instant
    let admitted: ContinuousClock.Instant
    private(set) var firstToken: ContinuousClock.Instant?

    init(
        id: Int, prompt: [TokenID], cache: KVCache, cachedPromptTokens: Int, plan: LayerPlan, maxTokens: Int,
        contextLength: Int, sampling: SamplingParameters, speculator: Speculator?, tokenizer: Tokenizer, stop: [String],
        deadline: ContinuousClock.Instant?, enqueued: ContinuousClock.Instant, admitted: ContinuousClock.Instant
    ) {
        self.id = id
        tokens = prompt
        promptCount = prompt.count
        self.cache = cache
        self.cachedPromptTokens = cachedPromptTokens
        self.plan = plan
        self.maxTokens = maxTokens
        self.contextLength = contextLength
        sampler = Sampler(parameters: sampling)
        self.speculator = speculator
        self.tokenizer = tokenizer
        decoder = StreamingDecoder(tokenizer: tokenizer)
        stopMatcher = StopMatcher(stops: stop)
        self.deadline = deadline
        self.enqueued = enqueued
        self.admitted = admitted
    }

    var isPrefilling: Bool { cache.count < promptCount }
    var isFinished: Bool { finishReason != nil }
    var speculationStats: SpeculationStats? { speculator?.stats }
    var searchedDraftPlan: (plan: LayerPlan, matchness: Double)? { speculator?.searchedPlan }
    var generatedTokens: ArraySlice<TokenID> { tokens[promptCount...] }
    /// The prompt and the generated tokens.
    var allTokens: [TokenID] { tokens }
    /// The tokens whose keys and values the cache holds.
    var cachedTokens: [TokenID] { Array(tokens[0..<min(cache.count, tokens.count)]) }

    /// The tokens this sequence puts into the next pass, at most `budget` of them while the
    /// prompt is processed (at least one); nil when it has finished. A speculating sequence
    /// drafts here (a layer-plan draft runs its own passes over this sequence's cache).
    mutating func segment(budget: Int, transformer: inout Transformer) throws -> BatchSegment? {
        guard finishReason == nil else { return nil }
        if isPrefilling {
            let start = cache.count
            let end = min(promptCount, start + max(1, budget))
            return BatchSegment(tokens: Array(tokens[start..<end]), startPosition: start,
                                logits: end == promptCount ? .last : .none)
        }
        guard generated < maxTokens else {
            finish(.length)
            return nil
        }
        growCache(toHold: cache.count + 1)
        guard cache.count < cache.capacity else {
            finish(.context)
            return nil
        }
        let pending = tokens[tokens.count - 1]
        guard var speculator else {
            return BatchSegment(tokens: [pending], startPosition: cache.count, logits: .last)
        }
        // drafts fit the context and maxTokens, as Generator's rounds do; the cache grows first
        growCache(toHold: min(contextLength, cache.count + 1 + (maxTokens - generated)))
        let position = cache.count
        let limit = min(maxTokens - generated, cache.capacity - position) - 1
        // a layer-plan drafter may leave entries past `position`: verification overwrites them
        let proposal = try speculator.propose(transformer: &transformer, cache: &cache, tokens: tokens, plan: plan,
                                              sampler: sampler, limit: limit)
        self.speculator = speculator
        draft = (proposal, position)
        return BatchSegment(tokens: [pending] + proposal.tokens, startPosition: position,
                            logits: proposal.tokens.isEmpty ? .last : .all)
    }

    /// Takes this sequence's logits from the pass: decides its next tokens and releases their
    /// text (`takeOutput`).
    mutating func accept(_ logits: Logits, verifySeconds: Double, now: ContinuousClock.Instant) throws {
        guard logits.rows > 0, finishReason == nil else { return }  // a prompt slice that is not the last
        let decided: [TokenID]
        if let (proposal, position) = draft, var speculator {
            decided = speculator.decide(draft: proposal, logits: logits, tokens: tokens, position: position,
                                        sampler: &sampler, verifySeconds: verifySeconds, cache: &cache)
            self.speculator = speculator
            draft = nil
        } else {
            guard FloatKernels.allFinite(logits.last) else {
                throw GenerationError.nonFiniteLogits(position: cache.count)
            }
            decided = [sampler.sample(logits: logits.last, history: tokens)]
        }
        if firstToken == nil { firstToken = now }
        for token in decided {
            guard generated < maxTokens else { break }
            if tokenizer.isEndOfGeneration(token) {
                finish(.stop)
                return
            }
            tokens.append(token)
            generated += 1
            outputTokens += 1
            let (release, stopped) = stopMatcher.feed(decoder.append(token))
            outputText += release
            if stopped {
                finishReason = .stop
                return
            }
        }
        if generated >= maxTokens { finish(.length) }
    }

    /// Ends the sequence, releasing what was held back (an incomplete character, the beginning
    /// of a stop string that did not follow).
    mutating func finish(_ reason: FinishReason) {
        guard finishReason == nil else { return }
        finishReason = reason
        outputText += stopMatcher.feed(decoder.finish()).release + stopMatcher.flush()
    }

    /// Ends the sequence without releasing held text (cancellation, a time limit, a failure).
    mutating func end(_ reason: FinishReason) {
        if finishReason == nil { finishReason = reason }
    }

    /// The text released and the tokens decided since the last call.
    mutating func takeOutput() -> (text: String, tokens: Int) {
        defer {
            outputText = ""
            outputTokens = 0
        }
        return (outputText, outputTokens)
    }

    /// Makes room for `positions` when the cache is smaller than the context: caches start at
    /// what the request needs and double, so memory follows what sequences use.
    private mutating func growCache(toHold positions: Int) {
        guard positions > cache.capacity, cache.capacity < contextLength else { return }
        cache = cache.resized(capacity: min(contextLength, max(positions, 2 * cache.capacity)))
    }
}
