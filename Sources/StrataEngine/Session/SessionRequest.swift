import StrataTokenizer

/// What a `ModelSession` generates from.
public enum SessionPrompt: Sendable, Equatable {
    /// Raw text, tokenized as `strata generate` tokenizes a prompt: a BOS token when the model's
    /// metadata asks for one, and special-token text (such as `<|im_start|>`) parsed.
    case text(String)
    /// Messages rendered by the model's chat template with the generation prompt appended.
    /// Message content is always tokenized as text: only the template's own markup becomes
    /// control tokens, so `<|im_end|>` inside a message cannot close its turn.
    case chat([ChatMessage])
    /// Token ids, used as given.
    case tokens([TokenID])
}

/// Whether a request decodes speculatively.
public enum SpeculationChoice: Sendable {
    /// What the session was opened with (`SessionOptions.speculation`).
    case sessionDefault
    /// Plain decoding.
    case off
    /// Speculative decoding with these settings.
    case on(SpeculationParameters)
}

/// One generation asked of a `ModelSession`.
public struct SessionRequest: Sendable {
    public var prompt: SessionPrompt
    /// The most tokens to generate; nil: until the end-of-generation token or the context is full.
    public var maxTokens: Int?
    public var sampling: SamplingParameters
    /// Generation stops before the first occurrence of any of these strings in the generated
    /// text; the string itself is not returned. Empty strings are ignored.
    public var stop: [String]
    /// The plan of the model that decides the output; nil: the session's plan. A request whose
    /// plan differs from the session's runs in forward passes of its own.
    public var plan: LayerPlan?
    public var speculation: SpeculationChoice
    /// Generation ends (`FinishReason.timeLimit`) once it has run this long; nil: the session's.
    public var timeLimit: Duration?

    public init(
        prompt: SessionPrompt, maxTokens: Int? = nil, sampling: SamplingParameters = .greedy, stop: [String] = [],
        plan: LayerPlan? = nil, speculation: SpeculationChoice = .sessionDefault, timeLimit: Duration? = nil
    ) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.plan = plan
        self.speculation = speculation
        self.timeLimit = timeLimit
    }
}

/// Why a session's generation ended.
public enum FinishReason: String, Sendable, Codable {
    /// The model produced an end-of-generation token, or a stop string was generated.
    case stop
    /// `maxTokens` were generated.
    case length
    /// The context (the sequence's KV cache) is full.
    case context
    /// The request's time limit ran out.
    case timeLimit = "time_limit"
    /// The consumer stopped listening or the session shut down.
    case cancelled
}

/// How one generation went.
public struct SessionResult: Sendable {
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Prompt tokens whose keys and values came from the prompt cache instead of a forward pass.
    public var cachedPromptTokens: Int
    /// Tokens generated, the end-of-generation token not counted; tokens after a stop string
    /// are not generated.
    public var completionTokens: Int
    /// The generated tokens (up to the stop string, or all of them).
    public var tokens: [TokenID]
    /// From admission (after any wait in the queue) to the first generated token.
    public var timeToFirstTokenSeconds: Double
    /// Seconds spent waiting in the queue before admission.
    public var queueSeconds: Double
    /// From the first generated token to the end.
    public var decodeSeconds: Double
    /// Speculation counts, when the request decoded speculatively.
    public var speculation: SpeculationStats?
    /// With a `LayerSearchDrafter`: the best draft plan its search found and its matchness, to
    /// persist for a warm start next time.
    public var searchedDraftPlan: (plan: LayerPlan, matchness: Double)?

    public init(
        finishReason: FinishReason, promptTokens: Int, cachedPromptTokens: Int, completionTokens: Int, tokens: [TokenID],
        timeToFirstTokenSeconds: Double, queueSeconds: Double, decodeSeconds: Double, speculation: SpeculationStats?
    ) {
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.completionTokens = completionTokens
        self.tokens = tokens
        self.timeToFirstTokenSeconds = timeToFirstTokenSeconds
        self.queueSeconds = queueSeconds
        self.decodeSeconds = decodeSeconds
        self.speculation = speculation
    }
}

/// What a session's generation stream yields, in order: `.started` once, `.text` any number of
/// times, `.finished` once.
public enum SessionEvent: Sendable {
    /// The request left the queue and its prompt is being processed.
    case started(promptTokens: Int, cachedTokens: Int)
    /// Generated text, never part of a stop string; `tokens` is how many generated tokens it
    /// completes (0 when the text was held back earlier while it could have begun a stop string).
    case text(String, tokens: Int)
    case finished(SessionResult)
}

/// Why a session refused a request (before any generation).
public enum SessionError: Error, CustomStringConvertible, Equatable {
    /// The queue holds `limit` waiting requests already.
    case queueFull(limit: Int)
    /// The prompt does not leave room for one generated token in the context.
    case promptTooLong(promptTokens: Int, contextLength: Int)
    /// `maxTokens` more tokens do not fit after the prompt.
    case maxTokensBeyondContext(maxTokens: Int, available: Int)
    case emptyPrompt
    case invalidMaxTokens(Int)
    /// The chat template is missing or failed.
    case chatPrompt(String)
    case invalidPlan(String)
    case invalidSpeculation(String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(token: TokenID, vocabularySize: Int)
    /// The session is shutting down.
    case shutDown

    public var description: String {
        switch self {
        case .queueFull(let limit): "the server is busy: \(limit) requests are waiting already; retry later"
        case .promptTooLong(let tokens, let context):
            "the prompt has \(tokens) tokens; the context is \(context), so at most \(max(0, context - 1)) prompt tokens fit"
        case .maxTokensBeyondContext(let maxTokens, let available):
            "max_tokens is \(maxTokens), but only \(available) tokens fit in the context after the prompt"
        case .emptyPrompt: "the prompt is empty"
        case .invalidMaxTokens(let value): "max_tokens must be at least 1, got \(value)"
        case .chatPrompt(let message): message
        case .invalidPlan(let message): "invalid plan: \(message)"
        case .invalidSpeculation(let message): "invalid speculation settings: \(message)"
        case .tokenOutOfRange(let token, let size): "token id \(token) is outside the vocabulary (0..<\(size))"
        case .shutDown: "the server is shutting down"
        }
    }
}

/// Counters of a session since it opened, for monitoring (`/metrics`).
public struct SessionMetrics: Sendable, Equatable {
    public var requestsStarted = 0
    public var requestsFinished = 0
    public var requestsRefused = 0
    public var promptTokens = 0
    public var cachedPromptTokens = 0
    public var generatedTokens = 0
    /// Sum and count of time-to-first-token, in seconds.
    public var timeToFirstTokenSecondsTotal = 0.0
    public var timeToFirstTokenCount = 0
    /// Tokens decided in decode-only steps (no prompt slice in the pass) and the seconds those
    /// steps took, all sequences together: the decode throughput.
    public var decodeTokens = 0
    public var decodeSeconds = 0.0
    public var forwardPasses = 0
    public var drafted = 0
    public var accepted = 0
    /// Right now.
    public var queueLength = 0
    public var activeSequences = 0
    public var cachedSequences = 0

    public init() {}
}
