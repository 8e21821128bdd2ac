import Foundation
import StrataEngine
import StrataTestSupport

/// transformers' float32 outputs for a model (`Fixtures/hf-<model>.json`).
struct TransformersReference: Decodable {
    struct Prompt: Decodable {
        let prompt: String
        let promptTokens: [Int32]
        let top10IDs: [Int32]
        let top10Logits: [Float]
        let greedy: [Int32]
        let greedyText: String
        /// Absent in the Gemma 3 reference.
        let stoppedAtEndOfGeneration: Bool?
        enum CodingKeys: String, CodingKey {
            case prompt
            case promptTokens = "prompt_tokens"
            case top10IDs = "top10_ids"
            case top10Logits = "top10_logits"
            case greedy = "greedy_48"
            case greedyText = "greedy_48_text"
            case stoppedAtEndOfGeneration = "stopped_at_eos"
        }
    }
    struct Perplexity: Decodable {
        let textTokens: Int
        let context: Int
        let windows: Int
        let tokensScored: Int
        let perplexity: Double
        enum CodingKeys: String, CodingKey {
            case context, windows, perplexity
            case textTokens = "text_tokens"
            case tokensScored = "tokens_scored"
        }
    }
    let prompts: [Prompt]
    let perplexity: Perplexity

    static func load(model: String) throws -> TransformersReference {
        try JSONDecoder().decode(TransformersReference.self, from: Fixture.data("hf-\(model).json"))
    }

    /// The perplexity reference this tier checks: all 8 windows (the aggregate figure) in the
    /// full tier; the first 2 in the default tier, pooled from transformers' per-window figures
    /// (`Fixtures/hf-windows.json`, made by `make_window_references.py`, same producer and rule).
    static func perplexityForTier(model: String) throws -> Perplexity {
        let full = try load(model: model).perplexity
        guard !TestTier.isFull else { return full }
        let perWindow = try JSONDecoder().decode([String: WindowReference].self, from: Fixture.data("hf-windows.json"))
        guard let windows = perWindow[model], windows.textTokens == full.textTokens, windows.context == full.context else {
            throw FixtureMissing(name: "hf-windows.json entry for \(model) matching hf-\(model).json")
        }
        let first = Array(windows.windows.prefix(2))
        let scored = first.reduce(0) { $0 + $1.tokensScored }
        let loss = first.reduce(0) { $0 + $1.negativeLogLikelihoodSum }
        return Perplexity(textTokens: full.textTokens, context: full.context, windows: first.count, tokensScored: scored,
                          perplexity: exp(loss / Double(scored)))
    }
}

/// transformers' per-window perplexities (`Fixtures/hf-windows.json`).
struct WindowReference: Decodable {
    struct Window: Decodable {
        let tokensScored: Int
        let negativeLogLikelihoodSum: Double
        enum CodingKeys: String, CodingKey {
            case tokensScored = "tokens_scored"
            case negativeLogLikelihoodSum = "nll_sum"
        }
    }
    let textTokens: Int
    let context: Int
    let windows: [Window]
    enum CodingKeys: String, CodingKey {
        case context, windows
        case textTokens = "text_tokens"
    }
}

enum Fixture {
    static func url(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) else {
            throw FixtureMissing(name: name)
        }
        return url
    }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    static func text(_ name: String) throws -> String { String(decoding: try data(name), as: UTF8.self) }
}

struct FixtureMissing: Error, CustomStringConvertible {
    let name: String
    var description: String { "fixture \(name) is missing from Tests/StrataEngineTests/Fixtures" }
}
