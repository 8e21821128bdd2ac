import Dispatch
import Synchronization

/// A model ready to serve generations: it owns the transformer, the KV caches of up to
/// `SessionOptions.parallel` sequences decoded together in one forward pass per step, a
/// prompt cache of finished sequences, and a thread that runs the CPU-bound loop off the
/// caller's executor. Requests beyond `parallel` wait in a bounded queue.
///
/// ```swift
/// let session = try ModelSession(transformer: Transformer(model: model))
/// for try await event in try session.generate(SessionRequest(prompt: .chat(messages), maxTokens: 64)) {
///     if case .text(let text, _) = event { print(text, terminator: "") }
/// }
/// ```
///
/// At temperature 0, or with a seed, a request's tokens are the same whether it runs alone or
/// beside others, and the same as `Generator` gives for the same prompt and settings: the
/// kernels are batch invariant and each sequence keeps its own sampler.
public final class ModelSession: Sendable {
    public let model: LanguageModel
    public let options: SessionOptions
    /// Positions per sequence: the prompt and the generated tokens.
    public let contextLength: Int
    private let plan: LayerPlan
    private let shared: Shared
    /// Earlier requests' prompts and outputs, which speculating requests' drafters draft from
    /// (nil when `SessionOptions.historyTokens` is 0).
    public let history: TokenHistory?

    /// Starts the decoding thread. Throws `SessionError.invalidPlan` for a plan that does not
    /// fit the model and `.invalidSpeculation` for a drafter that cannot draft for it.
    public init(transformer: Transformer, options: SessionOptions = .init()) throws(SessionError) {
        model = transformer.model
        self.options = options
        let config = transformer.config
        contextLength = max(2, min(options.contextLength ?? min(config.contextLength, SessionOptions.defaultContextLimit),
                                   config.contextLength))
        plan = options.plan ?? .full(layerCount: config.layerCount)
        do { try plan.validate(layerCount: config.layerCount) } catch { throw .invalidPlan(error.description) }
        if let speculation = options.speculation {
            do { _ = try Speculator(parameters: speculation, config: config) } catch {
                throw .invalidSpeculation("\(error)")
            }
        }
        shared = Shared()
        history = options.historyTokens > 0 ? TokenHistory(budget: max(2, options.historyTokens)) : nil
        let decoder = BatchDecoder(transformer: transformer, contextLength: contextLength,
                                   promptCacheEntries: options.promptCacheEntries, history: history)
        let shared = shared
        let parallel = max(1, options.parallel)
        DispatchQueue(label: "strata.session").async { Self.decodeLoop(decoder: decoder, shared: shared, parallel: parallel) }
    }

    deinit {
        shared.state.withLock { state in
            state.shuttingDown = true
            state.cancelled.formUnion(state.continuations.keys)
        }
        shared.wakeUp.signal()
    }

    /// The prompt's tokens: `.text` tokenized with special tokens parsed, `.chat` through the
    /// model's chat template (message content always as text), `.tokens` as given.
    public func promptTokens(_ prompt: SessionPrompt) throws(SessionError) -> [TokenID] {
        switch prompt {
        case .text(let text):
            return model.tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        case .chat(let messages):
            do { return try model.chatPromptTokens(messages) } catch { throw .chatPrompt("\(error)") }
        case .tokens(let tokens):
            let size = model.config.vocabularySize
            if let bad = tokens.first(where: { $0 < 0 || Int($0) >= size }) {
                throw .tokenOutOfRange(token: bad, vocabularySize: size)
            }
            return tokens
        }
    }

    /// Checks `request` (prompt length against the context, `maxTokens`, plan, speculation,
    /// queue space) and throws before anything streams; otherwise queues it and returns its
    /// events. Ending the stream early (the consumer's task cancelled, or the stream dropped)
    /// cancels the generation within one decode step and frees its sequence.
    public func generate(_ request: SessionRequest) throws(SessionError) -> AsyncThrowingStream<SessionEvent, any Error> {
        let admitted = try check(request)
        let (stream, continuation) = AsyncThrowingStream<SessionEvent, any Error>.makeStream()
        let shared = shared
        let id = try shared.state.withLock { state throws(SessionError) -> Int in
            guard !state.shuttingDown else { throw .shutDown }
            guard state.waiting.count < options.queueLimit else {
                state.metrics.requestsRefused += 1
                throw .queueFull(limit: options.queueLimit)
            }
            let id = state.nextID
            state.nextID += 1
            var queued = admitted
            queued.id = id
            state.waiting.append(queued)
            state.continuations[id] = continuation
            return id
        }
        continuation.onTermination = { termination in
            guard case .cancelled = termination else { return }
            shared.state.withLock { state in _ = state.cancelled.insert(id) }
            shared.wakeUp.signal()
        }
        shared.wakeUp.signal()
        return stream
    }

    /// Counters since the session opened, with the queue and sequences as they are now.
    public func metrics() -> SessionMetrics {
        shared.state.withLock { state in
            var metrics = state.metrics
            metrics.queueLength = state.waiting.count
            return metrics
        }
    }

    /// Stops admitting (later `generate` calls throw `.shutDown`, queued requests end with that
    /// error); lets running generations finish (`cancelRunning: false`) or cancels them; returns
    /// once the decoding thread has stopped.
    public func shutdown(cancelRunning: Bool) async {
        let alreadyStopped = shared.state.withLock { state -> Bool in
            state.shuttingDown = true
            for request in state.waiting {
                state.continuations.removeValue(forKey: request.id)?.finish(throwing: SessionError.shutDown)
            }
            state.waiting.removeAll()
            if cancelRunning { state.cancelled.formUnion(state.continuations.keys) }
            return state.loopEnded
        }
        guard !alreadyStopped else { return }
        shared.wakeUp.signal()
        let stopped = shared.stopped
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                stopped.wait()
                stopped.signal()  // later callers return at once
                done.resume()
            }
        }
    }

    /// The request as the decoding loop takes it, or the reason it is refused.
    private func check(_ request: SessionRequest) throws(SessionError) -> AdmittedRequest {
        let prompt = try promptTokens(request.prompt)
        guard !prompt.isEmpty else { throw .emptyPrompt }
        guard prompt.count < contextLength else { throw .promptTooLong(promptTokens: prompt.count, contextLength: contextLength) }
        let available = contextLength - prompt.count
        let maxTokens = request.maxTokens ?? available
        guard maxTokens >= 1 else { throw .invalidMaxTokens(maxTokens) }
        guard maxTokens <= available else { throw .maxTokensBeyondContext(maxTokens: maxTokens, available: available) }
        let requestPlan = request.plan ?? plan
        do { try requestPlan.validate(layerCount: model.config.layerCount) } catch { throw .invalidPlan(error.description) }
        let speculation: SpeculationParameters? = switch request.speculation {
        case .sessionDefault: options.speculation
        case .off: nil
        case .on(let parameters): parameters
        }
        var speculator: Speculator?
        if var speculation {
            if let history { speculation.drafter.attach(history: history) }
            do { speculator = try Speculator(parameters: speculation, config: model.config) } catch {
                throw .invalidSpeculation("\(error)")
            }
        }
        let now = ContinuousClock.now
        let limit = request.timeLimit ?? options.timeLimit
        return AdmittedRequest(
            id: -1, prompt: prompt, plan: requestPlan, maxTokens: maxTokens, sampling: request.sampling,
            speculator: speculator, stop: request.stop, deadline: limit.map { now + $0 }, enqueued: now)
    }

    /// The decoding thread: admits waiting requests into free sequences, runs steps, and hands
    /// each update to its stream, until shutdown leaves nothing to run.
    private static func decodeLoop(decoder: BatchDecoder, shared: Shared, parallel: Int) {
        var decoder = decoder
        while true {
            let free = parallel - decoder.sequences.count
            let (admitted, cancelled, ending) = shared.state.withLock { state in
                let count = min(free, state.waiting.count)
                let admitted = Array(state.waiting.prefix(count))
                state.waiting.removeFirst(count)
                let cancelled = state.cancelled
                state.cancelled.removeAll()
                return (admitted, cancelled, state.shuttingDown && state.waiting.isEmpty)
            }
            var updates: [SequenceUpdate] = []
            for request in admitted where !cancelled.contains(request.id) {
                let started = decoder.admit(request)
                updates.append(SequenceUpdate(id: request.id, started: started, text: "", tokens: 0))
            }
            for request in admitted where cancelled.contains(request.id) {
                updates.append(SequenceUpdate(id: request.id, text: "", tokens: 0, error: CancellationError()))
            }
            if !cancelled.isEmpty { updates += decoder.cancel(cancelled) }
            if !decoder.isIdle { updates += decoder.step() }
            deliver(updates, shared: shared, counters: decoder.counters, active: decoder.sequences.count,
                    cached: decoder.promptCache.entries.count)
            if decoder.isIdle {
                if ending { break }
                let hasWork = shared.state.withLock { !$0.waiting.isEmpty || !$0.cancelled.isEmpty || $0.shuttingDown }
                if !hasWork { shared.wakeUp.wait() }
            }
        }
        shared.state.withLock { $0.loopEnded = true }
        shared.stopped.signal()
    }

    private static func deliver(
        _ updates: [SequenceUpdate], shared: Shared, counters: SessionMetrics, active: Int, cached: Int
    ) {
        var finished: [(AsyncThrowingStream<SessionEvent, any Error>.Continuation, SequenceUpdate)] = []
        var streaming: [(AsyncThrowingStream<SessionEvent, any Error>.Continuation, SequenceUpdate)] = []
        shared.state.withLock { state in
            let refused = state.metrics.requestsRefused
            state.metrics = counters
            state.metrics.requestsRefused = refused
            state.metrics.activeSequences = active
            state.metrics.cachedSequences = cached
            for update in updates {
                let ends = update.result != nil || update.error != nil
                guard let continuation = ends ? state.continuations.removeValue(forKey: update.id)
                                              : state.continuations[update.id] else { continue }
                if ends { finished.append((continuation, update)) } else { streaming.append((continuation, update)) }
            }
        }
        for (continuation, update) in streaming + finished {
            if let started = update.started {
                continuation.yield(.started(promptTokens: started.promptTokens, cachedTokens: started.cachedTokens))
            }
            if !update.text.isEmpty || update.tokens > 0 { continuation.yield(.text(update.text, tokens: update.tokens)) }
            if let error = update.error {
                continuation.finish(throwing: error)
            } else if let result = update.result {
                continuation.yield(.finished(result))
                continuation.finish()
            }
        }
    }
}

/// What the callers' threads and the decoding thread share.
private final class Shared: Sendable {
    struct State: Sendable {
        var waiting: [AdmittedRequest] = []
        var continuations: [Int: AsyncThrowingStream<SessionEvent, any Error>.Continuation] = [:]
        var cancelled: Set<Int> = []
        var nextID = 0
        var shuttingDown = false
        var loopEnded = false
        var metrics = SessionMetrics()
    }

    let state = Mutex(State())
    /// Signalled whenever there is something for the decoding thread to do.
    let wakeUp = DispatchSemaphore(value: 0)
    /// Signalled when the decoding thread has ended.
    let stopped = DispatchSemaphore(value: 0)
}
