import StrataTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// A probability distribution over a few tokens (those that survived the filters), most
/// likely first.
public struct TokenDistribution: Sendable, Equatable {
    public var tokens: [TokenID]
    public var probabilities: [Float]

    /// The probability of `token` (0 if it was filtered out).
    public func probability(of token: TokenID) -> Float {
        guard let index = tokens.firstIndex(of: token) else { return 0 }
        return probabilities[index]
    }
}

/// Chooses tokens from logits: repetition penalty, then top-k, top-p, min-p, temperature, and a
/// draw from a seeded generator (llama.cpp's default order). Reproducible for a given seed.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var random: RandomSource

    public init(parameters: SamplingParameters) {
        self.init(parameters: parameters, seed: parameters.seed)
    }

    /// A sampler with `parameters` but its own random stream.
    public init(parameters: SamplingParameters, seed: UInt64) {
        self.parameters = parameters
        random = RandomSource(seed: seed)
    }

    /// The next token for `logits`, given the tokens so far (for the repetition penalty).
    public mutating func sample(logits: ArraySlice<Float>, history: [TokenID]) -> TokenID {
        if parameters.isGreedy {
            return Sampler.argmax(penalized(logits, history: history))
        }
        let distribution = distribution(logits: logits, history: history)
        return draw(from: distribution)
    }

    /// Draws one token from `distribution` with this sampler's generator.
    public mutating func draw(from distribution: TokenDistribution) -> TokenID {
        let threshold = random.nextUnitFloat()
        var cumulative: Float = 0
        for (token, probability) in zip(distribution.tokens, distribution.probabilities) {
            cumulative += probability
            if threshold < cumulative { return token }
        }
        return distribution.tokens.last!
    }

    /// A uniform number in [0, 1) from this sampler's generator (speculative acceptance tests).
    public mutating func nextUnitFloat() -> Float { random.nextUnitFloat() }

    /// The distribution the sampler draws from (after every filter and the temperature).
    /// Greedy parameters give all mass to the argmax.
    public func distribution(logits: ArraySlice<Float>, history: [TokenID]) -> TokenDistribution {
        let values = penalized(logits, history: history)
        if parameters.isGreedy {
            return TokenDistribution(tokens: [Sampler.argmax(values)], probabilities: [1])
        }
        // Candidates, most likely first; top-k bounds the sort.
        var candidates: [(token: TokenID, logit: Float)]
        let base = values.startIndex
        if parameters.topK > 0 && parameters.topK < values.count {
            candidates = Sampler.largest(values, count: parameters.topK)
        } else {
            candidates = values.indices.map { (TokenID($0 - base), values[$0]) }
            candidates.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.token < $1.token) }
        }
        if parameters.topP < 1 {
            let probabilities = Sampler.softmax(candidates.map(\.logit), temperature: 1)
            var cumulative: Float = 0
            var keep = candidates.count
            for (index, probability) in probabilities.enumerated() {
                cumulative += probability
                if cumulative >= parameters.topP { keep = index + 1; break }
            }
            candidates.removeSubrange(keep...)
        }
        if parameters.minP > 0, let top = candidates.first {
            let threshold = top.logit + logf(parameters.minP)
            candidates.removeAll { $0.logit < threshold }
        }
        let probabilities = Sampler.softmax(candidates.map(\.logit), temperature: parameters.temperature)
        return TokenDistribution(tokens: candidates.map(\.token), probabilities: probabilities)
    }

    private func penalized(_ logits: ArraySlice<Float>, history: [TokenID]) -> ArraySlice<Float> {
        guard parameters.repeatPenalty != 1, parameters.repeatLastN != 0, !history.isEmpty else { return logits }
        var values = logits
        let base = values.startIndex
        let window = parameters.repeatLastN < 0 ? history[...] : history.suffix(parameters.repeatLastN)
        for token in Set(window) where token >= 0 && Int(token) < values.count {
            let index = base + Int(token)
            values[index] = values[index] > 0 ? values[index] / parameters.repeatPenalty : values[index] * parameters.repeatPenalty
        }
        return values
    }

    /// Index of the largest logit; ties go to the lowest id.
    public static func argmax(_ logits: ArraySlice<Float>) -> TokenID {
        var best = logits.startIndex
        for index in logits.indices where logits[index] > logits[best] { best = index }
        return TokenID(best - logits.startIndex)
    }

    /// The `count` largest logits, largest first (ties to the lower id).
    static func largest(_ logits: ArraySlice<Float>, count: Int) -> [(token: TokenID, logit: Float)] {
        var kept: [(token: TokenID, logit: Float)] = []
        kept.reserveCapacity(count + 1)
        let base = logits.startIndex
        for index in logits.indices {
            let value = logits[index]
            if kept.count == count, let last = kept.last, value <= last.logit { continue }
            // Insertion keeps `kept` sorted; k is small (tens), so this beats a heap.
            var position = kept.count
            while position > 0 && kept[position - 1].logit < value { position -= 1 }
            kept.insert((TokenID(index - base), value), at: position)
            if kept.count > count { kept.removeLast() }
        }
        return kept
    }

    static func softmax(_ logits: [Float], temperature: Float) -> [Float] {
        guard let maximum = logits.max() else { return [] }
        let exponentials = logits.map { expf(($0 - maximum) / temperature) }
        let total = exponentials.reduce(0, +)
        return exponentials.map { $0 / total }
    }
}

/// xoshiro256** seeded through SplitMix64: fast, and identical on every platform.
struct RandomSource: Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var mixer = seed
        func next() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var z = mixer
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    mutating func nextUnitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
