import Foundation
import StrataEngine

/// Settings of `runServingBenchmark`.
public struct ServingBenchmarkOptions: Sendable {
    /// Concurrent clients of each round; each sends one streaming request.
    public var clients: [Int] = [1, 2, 4, 8]
    /// Tokens each request generates (fewer if the model ends its answer).
    public var generatedTokens = 64
    /// Tokens of chat history before the prompt-cache test's second turn.
    public var historyTokens = 1_000
    /// Timed repetitions of each round and of the prompt-cache pair, after one warm-up.
    public var repetitions = 2

    public init() {}
}

/// One round: `clients` requests sent together to one session.
public struct ServingRound: Sendable, Codable {
    public var clients: Int
    public var generatedTokens: Int
    public var wallSeconds: Double
    /// Generated tokens of all clients over the round's wall time.
    public var tokensPerSecond: Double
    /// Tokens decided in decode-only steps over those steps' time: what the sequences decoding
    /// together reach, without the prompt passes that `tokensPerSecond` includes.
    public var decodeTokensPerSecond: Double
    /// From sending the request to its first token (queueing included), mean and worst.
    public var meanTimeToFirstTokenSeconds: Double
    public var maxTimeToFirstTokenSeconds: Double
    /// Whether every request's tokens equal the same request's alone (greedy).
    public var outputsMatchAlone: Bool

    enum CodingKeys: String, CodingKey {
        case clients
        case generatedTokens = "generated_tokens"
        case wallSeconds = "wall_seconds"
        case tokensPerSecond = "tokens_per_second"
        case decodeTokensPerSecond = "decode_tokens_per_second"
        case meanTimeToFirstTokenSeconds = "mean_ttft_seconds"
        case maxTimeToFirstTokenSeconds = "max_ttft_seconds"
        case outputsMatchAlone = "outputs_match_alone"
    }
}

/// The second turn of a chat with a long history, with the prompt cache and without.
public struct PromptCacheMeasurement: Sendable, Codable {
    public var historyTokens: Int
    public var secondTurnPromptTokens: Int
    public var cachedTokens: Int
    public var cachedTimeToFirstTokenSeconds: Double
    public var uncachedTimeToFirstTokenSeconds: Double
    public var speedup: Double
    public var outputsIdentical: Bool

    enum CodingKeys: String, CodingKey {
        case historyTokens = "history_tokens"
        case secondTurnPromptTokens = "second_turn_prompt_tokens"
        case cachedTokens = "cached_tokens"
        case cachedTimeToFirstTokenSeconds = "cached_ttft_seconds"
        case uncachedTimeToFirstTokenSeconds = "uncached_ttft_seconds"
        case speedup
        case outputsIdentical = "outputs_identical"
    }
}

/// `strata bench --serving`: rounds of concurrent clients and the prompt cache.
public struct ServingReport: Sendable, Codable {
    public var rounds: [ServingRound]
    public var promptCache: PromptCacheMeasurement

    enum CodingKeys: String, CodingKey {
        case rounds
        case promptCache = "prompt_cache"
    }
}

/// Measures a `ModelSession` as a server uses it, in process: for each client count, that many
/// greedy requests (bundled prompts, in turn) sent at once to a session decoding up to the
/// largest count together; then a chat's second turn after `historyTokens` of history, with
/// the prompt cache and without, alternating. Times are medians over the repetitions.
public func runServingBenchmark(
    transformer: Transformer, prompts: [BenchmarkPrompt], options: ServingBenchmarkOptions,
    progress: (String) -> Void = { _ in }
) async throws -> ServingReport {
    let model = transformer.model
    let parallel = options.clients.max() ?? 1
    let requests = try prompts.map { prompt in
        try model.promptTokens(prompt.prompt, chat: prompt.type == .chat && model.chatTemplateSource != nil)
    }
    let session = try ModelSession(transformer: transformer, options: SessionOptions(
        parallel: parallel, queueLimit: max(64, parallel), promptCacheEntries: 0))
    defer { Task { await session.shutdown(cancelRunning: true) } }
    func send(_ count: Int, offset: Int) async throws -> [(tokens: [TokenID], ttft: Double)] {
        try await withThrowingTaskGroup(of: (Int, [TokenID], Double).self) { group in
            for client in 0..<count {
                let prompt = requests[(offset + client) % requests.count]
                let stream = try session.generate(SessionRequest(prompt: .tokens(prompt), maxTokens: options.generatedTokens))
                group.addTask {
                    for try await event in stream {
                        if case .finished(let result) = event {
                            return (client, result.tokens, result.queueSeconds + result.timeToFirstTokenSeconds)
                        }
                    }
                    return (client, [], 0)
                }
            }
            var results = [(tokens: [TokenID], ttft: Double)](repeating: ([], 0), count: count)
            for try await (client, tokens, ttft) in group { results[client] = (tokens, ttft) }
            return results
        }
    }

    // each prompt alone first: the warm-up, and the outputs every round must reproduce
    progress("alone")
    var aloneOutputs: [[TokenID]] = []
    for index in requests.indices { aloneOutputs.append(try await send(1, offset: index)[0].tokens) }

    var rounds: [ServingRound] = []
    for clients in options.clients {
        var samples: [ServingRound] = []
        for repetition in 0..<options.repetitions {
            progress("\(clients) clients, run \(repetition + 1)")
            let before = session.metrics()
            let start = ContinuousClock.now
            let results = try await send(clients, offset: repetition)
            let wall = (ContinuousClock.now - start).seconds
            let after = session.metrics()
            let generated = results.reduce(0) { $0 + $1.tokens.count }
            let matches = results.enumerated().allSatisfy { client, result in
                result.tokens == aloneOutputs[(repetition + client) % requests.count]
            }
            let decodeSeconds = after.decodeSeconds - before.decodeSeconds
            samples.append(ServingRound(
                clients: clients, generatedTokens: generated, wallSeconds: wall, tokensPerSecond: Double(generated) / wall,
                decodeTokensPerSecond: decodeSeconds > 0 ? Double(after.decodeTokens - before.decodeTokens) / decodeSeconds : 0,
                meanTimeToFirstTokenSeconds: results.reduce(0) { $0 + $1.ttft } / Double(clients),
                maxTimeToFirstTokenSeconds: results.map(\.ttft).max() ?? 0, outputsMatchAlone: matches))
        }
        var median = samples.sorted { $0.tokensPerSecond < $1.tokensPerSecond }[samples.count / 2]
        median.outputsMatchAlone = samples.allSatisfy(\.outputsMatchAlone)
        rounds.append(median)
    }
    let cache = try await measurePromptCache(transformer: transformer, options: options, progress: progress)
    return ServingReport(rounds: rounds, promptCache: cache)
}

/// Turn 1 of a chat whose user message is `historyTokens` of prose, then turn 2 (turn 1, its
/// answer, a new question) on a session with the prompt cache and on one without.
private func measurePromptCache(
    transformer: Transformer, options: ServingBenchmarkOptions, progress: (String) -> Void
) async throws -> PromptCacheMeasurement {
    let model = transformer.model
    let tokenizer = model.tokenizer
    let prose = tokenizer.decode(Array(tokenizer.encode(defaultPerplexityText).prefix(options.historyTokens)))
    let useChat = model.chatTemplateSource != nil
    let first: SessionPrompt = useChat
        ? .chat([ChatMessage(role: "user", content: "Read this passage.\n\n" + prose)]) : .text(prose)
    func secondTurn(answer: String) -> SessionPrompt {
        useChat
            ? .chat([ChatMessage(role: "user", content: "Read this passage.\n\n" + prose),
                     ChatMessage(role: "assistant", content: answer),
                     ChatMessage(role: "user", content: "Who is the passage about? Answer in one sentence.")])
            : .text(prose + answer + "\n\nWho is the passage about? Answer in one sentence.")
    }
    func collect(_ session: ModelSession, _ prompt: SessionPrompt, maxTokens: Int) async throws -> (String, SessionResult) {
        var text = ""
        for try await event in try session.generate(SessionRequest(prompt: prompt, maxTokens: maxTokens)) {
            switch event {
            case .text(let piece, _): text += piece
            case .finished(let result): return (text, result)
            case .started: break
            }
        }
        throw CancellationError()
    }
    var cachedTimes: [Double] = []
    var uncachedTimes: [Double] = []
    var outputs: [[TokenID]] = []
    var cachedTokens = 0
    var promptTokens = 0
    for repetition in 0...options.repetitions {
        for useCache in [true, false] {
            progress("prompt cache \(useCache ? "on" : "off"), run \(repetition)")
            let session = try ModelSession(transformer: transformer, options: SessionOptions(
                parallel: 1, promptCacheEntries: useCache ? 4 : 0))
            let (answer, _) = try await collect(session, first, maxTokens: 32)
            let (_, result) = try await collect(session, secondTurn(answer: answer), maxTokens: 16)
            await session.shutdown(cancelRunning: true)
            guard repetition > 0 else { continue }  // the warm-up
            if useCache {
                cachedTimes.append(result.timeToFirstTokenSeconds)
                cachedTokens = result.cachedPromptTokens
            } else {
                uncachedTimes.append(result.timeToFirstTokenSeconds)
            }
            promptTokens = result.promptTokens
            outputs.append(result.tokens)
        }
    }
    let cached = cachedTimes.sorted()[cachedTimes.count / 2]
    let uncached = uncachedTimes.sorted()[uncachedTimes.count / 2]
    return PromptCacheMeasurement(
        historyTokens: options.historyTokens, secondTurnPromptTokens: promptTokens, cachedTokens: cachedTokens,
        cachedTimeToFirstTokenSeconds: cached, uncachedTimeToFirstTokenSeconds: uncached,
        speedup: cached > 0 ? uncached / cached : 0, outputsIdentical: Set(outputs.map { $0.map(Int.init) }).count == 1)
}
