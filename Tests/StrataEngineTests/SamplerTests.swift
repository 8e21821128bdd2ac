import StrataEngine
import StrataTokenizer
import Testing

@Suite("Sampler")
struct SamplerTests {
    let logits: ArraySlice<Float> = [1.0, 3.0, 2.5, -1.0, 3.0, 0.5][...]

    @Test func greedyTakesArgmaxWithTiesToLowestID() {
        var sampler = Sampler(parameters: .greedy)
        #expect(sampler.sample(logits: logits, history: []) == 1)
    }

    @Test func repetitionPenaltyDemotesSeenTokens() {
        var parameters = SamplingParameters.greedy
        parameters.repeatPenalty = 2
        var sampler = Sampler(parameters: parameters)
        // 3.0 / 2 = 1.5 for ids 1 and 4, so 2.5 (id 2) wins.
        #expect(sampler.sample(logits: logits, history: [1, 4]) == 2)
        // Negative logits are multiplied, pushing them further down.
        let negative: ArraySlice<Float> = [-1.0, -1.5][...]
        #expect(Sampler(parameters: parameters).distribution(logits: negative, history: [0]).tokens == [1])
    }

    @Test func topKKeepsTheKMostLikely() {
        let parameters = SamplingParameters(temperature: 1, topK: 3, topP: 1, minP: 0)
        let distribution = Sampler(parameters: parameters).distribution(logits: logits, history: [])
        #expect(distribution.tokens == [1, 4, 2])
        #expect(abs(distribution.probabilities.reduce(0, +) - 1) < 1e-6)
    }

    @Test func topPKeepsTheSmallestSetReachingP() {
        let parameters = SamplingParameters(temperature: 1, topK: 0, topP: 0.5, minP: 0)
        let distribution = Sampler(parameters: parameters).distribution(logits: logits, history: [])
        // Probabilities of ids 1 and 4 are ~0.33 each: two are needed to pass 0.5.
        #expect(distribution.tokens == [1, 4])
    }

    @Test func minPDropsUnlikelyTokens() {
        let parameters = SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0.5)
        let distribution = Sampler(parameters: parameters).distribution(logits: logits, history: [])
        // exp(2.5 - 3) = 0.61 >= 0.5 keeps id 2; exp(1 - 3) = 0.14 drops id 0.
        #expect(distribution.tokens == [1, 4, 2])
    }

    @Test func temperatureSharpensAndFlattens() {
        let cold = Sampler(parameters: SamplingParameters(temperature: 0.1, topK: 0, topP: 1, minP: 0))
            .distribution(logits: logits, history: [])
        let hot = Sampler(parameters: SamplingParameters(temperature: 10, topK: 0, topP: 1, minP: 0))
            .distribution(logits: logits, history: [])
        #expect(cold.probability(of: 2) < 0.01)
        #expect(hot.probability(of: 2) > 0.15)
    }

    @Test func drawsFollowTheDistribution() {
        var sampler = Sampler(parameters: SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42))
        let distribution = sampler.distribution(logits: logits, history: [])
        var counts: [TokenID: Int] = [:]
        let draws = 60_000
        for _ in 0..<draws { counts[sampler.draw(from: distribution), default: 0] += 1 }
        for (token, probability) in zip(distribution.tokens, distribution.probabilities) {
            let observed = Double(counts[token, default: 0]) / Double(draws)
            // 5 standard deviations of a binomial proportion.
            let bound = 5 * (Double(probability) * (1 - Double(probability)) / Double(draws)).squareRoot()
            #expect(abs(observed - Double(probability)) < bound + 1e-4, "token \(token)")
        }
    }
}
