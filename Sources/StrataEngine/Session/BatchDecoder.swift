import StrataTokenizer

/// A request admitted to a `BatchDecoder`, checked and tokenized.
struct AdmittedRequest: Sendable {
    var id: Int
    var prompt: [TokenID]
    var plan: LayerPlan
    var maxTokens: Int
    var sampling: SamplingParameters
    var speculator: Speculator?
    var stop: [String]
    var deadline: ContinuousClock.Instant?
    var enqueued: ContinuousClock.Instant
}

/// What one sequence did in a step.
struct SequenceUpdate: Sendable {
    var id: Int
    /// Set on the step that admitted the sequence.
    var started: (promptTokens: Int, cachedTokens: Int)?
    var text: String
    var tokens: Int
    var result: SessionResult?
    var error: (any Error)?
}

/// The synchronous core of a `ModelSession`: several sequences decoded together, each step
/// ONE forward pass over every active sequence's next tokens (the rest of a prompt, or the
/// pending token and its drafts), per plan. Sequences join and leave between steps; finished
/// ones leave their caches to the prompt cache.
struct BatchDecoder: Sendable {
    private(set) var transformer: Transformer
    let contextLength: Int
    /// Tokens one step processes at most, over all sequences; a prompt longer than what is left
    /// goes through in slices over several steps, beside the others' decoding.
    let stepBudget: Int
    private(set) var sequences: [DecodingSequence] = []
    private(set) var promptCache: PromptCache
    private(set) var counters = SessionMetrics()
    /// Where finished requests' prompts and outputs go, for later requests' drafts.
    let history: TokenHistory?
    private let clock = ContinuousClock()

    init(
        transformer: Transformer, contextLength: Int, promptCacheEntries: Int, history: TokenHistory? = nil,
        stepBudget: Int = 128
    ) {
        self.history = history
        self.transformer = transformer
        self.contextLength = contextLength
        self.stepBudget = stepBudget
        promptCache = PromptCache(limit: promptCacheEntries)
    }

    var isIdle: Bool { sequences.isEmpty }

    /// Starts a sequence; its `.started` update comes with the next step.
    mutating func admit(_ request: AdmittedRequest) -> (promptTokens: Int, cachedTokens: Int) {
        let now = clock.now
        let initial = min(contextLength, request.prompt.count + min(request.maxTokens, Self.initialGeneratedPositions) + 1)
        var reused = 0
        var cache: KVCache
        if let entry = promptCache.take(longestPrefixOf: request.prompt, plan: request.plan) {
            cache = entry.cache
            reused = entry.reusable
            cache.truncate(to: reused)
            if cache.capacity < initial { cache = cache.resized(capacity: initial) }
        } else {
            cache = transformer.makeCache(capacity: initial)
        }
        sequences.append(DecodingSequence(
            id: request.id, prompt: request.prompt, cache: cache, cachedPromptTokens: reused, plan: request.plan,
            maxTokens: request.maxTokens, contextLength: contextLength, sampling: request.sampling,
            speculator: request.speculator, tokenizer: transformer.model.tokenizer, stop: request.stop,
            deadline: request.deadline, enqueued: request.enqueued, admitted: now))
        counters.requestsStarted += 1
        counters.promptTokens += request.prompt.count
        counters.cachedPromptTokens += reused
        return (request.prompt.count, reused)
    }

    /// Caches start with room for the prompt and this many generated tokens, and grow.
    static let initialGeneratedPositions = 256

    /// Ends the sequences `ids` (their consumers left) and frees them.
    mutating func cancel(_ ids: Set<Int>) -> [SequenceUpdate] {
        var updates: [SequenceUpdate] = []
        for index in sequences.indices where ids.contains(sequences[index].id) {
            sequences[index].end(.cancelled)
        }
        retireFinished(into: &updates)
        return updates
    }

    /// One step: every active sequence's next tokens in one forward pass per plan, then each
    /// sequence's decision. Returns an update for every sequence that produced something.
    mutating func step() -> [SequenceUpdate] {
        var updates: [SequenceUpdate] = []
        let stepStart = clock.now
        for index in sequences.indices {
            if let deadline = sequences[index].deadline, stepStart >= deadline { sequences[index].end(.timeLimit) }
        }
        // decoding sequences first: their segments are small; prompts share what is left
        var segments: [(index: Int, segment: BatchSegment)] = []
        var used = 0
        for index in sequences.indices where !sequences[index].isPrefilling {
            do {
                if let segment = try sequences[index].segment(budget: 1, transformer: &transformer) {
                    segments.append((index, segment))
                    used += segment.tokens.count
                }
            } catch {
                fail(index, error, into: &updates)
            }
        }
        for index in sequences.indices where sequences[index].isPrefilling && !sequences[index].isFinished {
            let budget = stepBudget - used
            guard budget > 0 || segments.isEmpty else { break }
            do {
                if let segment = try sequences[index].segment(budget: budget, transformer: &transformer) {
                    segments.append((index, segment))
                    used += segment.tokens.count
                }
            } catch {
                fail(index, error, into: &updates)
            }
        }
        let decoding = segments.filter { !sequences[$0.index].isPrefilling }.map(\.index)
        var generatedBefore = 0
        for index in decoding { generatedBefore += sequences[index].generated }

        // one pass per plan: sequences with another plan than the session's run in their own
        var plans: [LayerPlan] = []
        for (index, _) in segments where !plans.contains(sequences[index].plan) { plans.append(sequences[index].plan) }
        for plan in plans {
            let group = segments.filter { sequences[$0.index].plan == plan }
            var caches = group.map { _ in KVCache.placeholder }
            for (slot, member) in group.enumerated() { swap(&caches[slot], &sequences[member.index].cache) }
            let start = clock.now
            let result = Result { () throws(ForwardError) -> [Logits] in
                try transformer.forward(batch: group.map(\.segment), plan: plan, caches: &caches)
            }
            let seconds = (clock.now - start).seconds
            for (slot, member) in group.enumerated() { swap(&caches[slot], &sequences[member.index].cache) }
            counters.forwardPasses += 1
            switch result {
            case .success(let logits):
                let now = clock.now
                for (slot, member) in group.enumerated() {
                    do {
                        try sequences[member.index].accept(logits[slot], verifySeconds: seconds, now: now)
                    } catch {
                        fail(member.index, error, into: &updates)
                    }
                }
            case .failure(let error):
                for member in group { fail(member.index, error, into: &updates) }
            }
        }
        var generatedAfter = 0
        for index in decoding { generatedAfter += sequences[index].generated }
        // steps that also processed a prompt slice would charge its time to decoding
        if !decoding.isEmpty && decoding.count == segments.count {
            counters.decodeTokens += generatedAfter - generatedBefore
            counters.decodeSeconds += (clock.now - stepStart).seconds
        }

        for index in sequences.indices {
            let (text, tokens) = sequences[index].takeOutput()
            if !text.isEmpty || tokens > 0 {
                updates.append(SequenceUpdate(id: sequences[index].id, text: text, tokens: tokens))
            }
        }
        counters.generatedTokens += updates.reduce(0) { $0 + $1.tokens }
        retireFinished(into: &updates)
        return updates
    }

    private mutating func fail(_ index: Int, _ error: any Error, into updates: inout [SequenceUpdate]) {
        guard !sequences[index].isFinished else { return }
        sequences[index].end(.cancelled)
        updates.append(SequenceUpdate(id: sequences[index].id, text: "", tokens: 0, error: error))
    }

    /// Removes finished sequences, reporting their results and keeping their caches.
    private mutating func retireFinished(into updates: inout [SequenceUpdate]) {
        let now = clock.now
        var kept: [DecodingSequence] = []
        for var sequence in sequences {
            guard let reason = sequence.finishReason else {
                kept.append(sequence)
                continue
            }
            let (text, tokens) = sequence.takeOutput()
            let firstToken = sequence.firstToken
            var result = SessionResult(
                finishReason: reason, promptTokens: sequence.promptCount, cachedPromptTokens: sequence.cachedPromptTokens,
                completionTokens: sequence.generated, tokens: Array(sequence.generatedTokens),
                timeToFirstTokenSeconds: firstToken.map { ($0 - sequence.admitted).seconds } ?? 0,
                queueSeconds: (sequence.admitted - sequence.enqueued).seconds,
                decodeSeconds: firstToken.map { (now - $0).seconds } ?? 0,
                speculation: sequence.speculationStats)
            result.searchedDraftPlan = sequence.searchedDraftPlan
            if let index = updates.firstIndex(where: { $0.id == sequence.id && $0.error == nil }) {
                updates[index].text += text
                updates[index].tokens += tokens
                updates[index].result = result
            } else if !updates.contains(where: { $0.id == sequence.id }) {
                updates.append(SequenceUpdate(id: sequence.id, text: text, tokens: tokens, result: result))
            }
            counters.requestsFinished += 1
            if firstToken != nil {
                counters.timeToFirstTokenCount += 1
                counters.timeToFirstTokenSecondsTotal += result.timeToFirstTokenSeconds
            }
            if let stats = sequence.speculationStats {
                counters.drafted += stats.drafted
                counters.accepted += stats.accepted
            }
            if reason != .cancelled, let history { history.add(sequence.allTokens) }
            if sequence.cache.count > 0 {
                promptCache.insert(tokens: sequence.cachedTokens, plan: sequence.plan, cache: sequence.cache)
            }
        }
        sequences = kept
    }
}
