/// How the next token is chosen from logits. Defaults follow llama.cpp's command-line tools.
public struct SamplingParameters: Sendable, Codable, Equatable {
    /// 0 means greedy (argmax, ties to the lowest id).
    public var temperature: Float = 0.8
    /// Keep only the `topK` most likely tokens; 0 disables.
    public var topK: Int = 40
    /// Keep the smallest set of most likely tokens whose probability reaches `topP`; 1 disables.
    public var topP: Float = 0.95
    /// Drop tokens less likely than `minP` times the most likely one; 0 disables.
    public var minP: Float = 0.05
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this; 1 disables.
    public var repeatPenalty: Float = 1.0
    /// How many recent tokens the repetition penalty looks at.
    public var repeatLastN: Int = 64
    /// Seed of the random generator; the same seed reproduces the same sampling.
    public var seed: UInt64 = 0

    public init(
        temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
        repeatPenalty: Float = 1.0, repeatLastN: Int = 64, seed: UInt64 = 0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.seed = seed
    }

    /// Greedy decoding.
    public static let greedy = SamplingParameters(temperature: 0, topK: 0, topP: 1, minP: 0)

    /// Whether the choice is a plain argmax.
    public var isGreedy: Bool { temperature <= 0 }

    enum CodingKeys: String, CodingKey {
        case temperature
        case topK = "top_k"
        case topP = "top_p"
        case minP = "min_p"
        case repeatPenalty = "repeat_penalty"
        case repeatLastN = "repeat_last_n"
        case seed
    }
}
