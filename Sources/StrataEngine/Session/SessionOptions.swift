/// How a `ModelSession` runs.
public struct SessionOptions: Sendable {
    /// Sequences decoded together in one forward pass.
    public var parallel: Int
    /// Positions per sequence (prompt and generated tokens); nil: the model's context length,
    /// at most `defaultContextLimit`.
    public var contextLength: Int?
    /// Requests that may wait for a free sequence; more are refused (`SessionError.queueFull`).
    public var queueLimit: Int
    /// The plan of the model that decides the output; nil: the full model.
    public var plan: LayerPlan?
    /// Speculation for requests that ask for the session default; nil: plain decoding.
    public var speculation: SpeculationParameters?
    /// Finished sequences whose KV caches are kept for prompt reuse (least recently used evicted
    /// first); 0 turns the prompt cache off.
    public var promptCacheEntries: Int
    /// Tokens of earlier prompts and outputs kept for speculating requests to draft from
    /// (`TokenHistory`, about 44 bytes per token; oldest evicted first); 0 keeps none.
    public var historyTokens: Int
    /// A request that runs longer ends with `FinishReason.timeLimit`; nil: no limit.
    public var timeLimit: Duration?

    /// The context used when the model allows more and `contextLength` is not set.
    public static let defaultContextLimit = 4_096

    public init(
        parallel: Int = 4, contextLength: Int? = nil, queueLimit: Int = 64, plan: LayerPlan? = nil,
        speculation: SpeculationParameters? = nil, promptCacheEntries: Int = 8, historyTokens: Int = TokenHistory.defaultBudget,
        timeLimit: Duration? = .seconds(600)
    ) {
        self.parallel = parallel
        self.contextLength = contextLength
        self.queueLimit = queueLimit
        self.plan = plan
        self.speculation = speculation
        self.promptCacheEntries = promptCacheEntries
        self.historyTokens = historyTokens
        self.timeLimit = timeLimit
    }
}
