import Foundation

enum Fixture {
    static func path(_ name: String) throws -> String {
        guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) else {
            throw FixtureMissing(name: name)
        }
        return url.path
    }
}

struct FixtureMissing: Error, CustomStringConvertible {
    let name: String
    var description: String { "fixture \(name) is missing from Tests/StrataEvaluationTests/Fixtures" }
}

/// `lambada-reference.json`: transformers' LAMBADA figures per model.
struct LambadaReference: Decodable {
    struct Result: Decodable {
        let accuracy: Double
        let meanContinuationLogProbability: Double
        enum CodingKeys: String, CodingKey {
            case accuracy
            case meanContinuationLogProbability = "mean_continuation_logprob"
        }
    }
    let results: [String: Result]

    static func load() throws -> LambadaReference {
        try JSONDecoder().decode(LambadaReference.self, from: Data(contentsOf: URL(fileURLWithPath: Fixture.path("lambada-reference.json"))))
    }

    /// transformers' figures on the first `passages` passages: the aggregate run for 300, and
    /// otherwise pooled from its per-passage results (`hf-lambada-passages.json`, made by
    /// `make_lambada_references.py` with the same producer and method).
    static func result(model: String, passages: Int) throws -> Result? {
        if passages == 300 { return try load().results[model] }
        let url = URL(fileURLWithPath: try Fixture.path("hf-lambada-passages.json"))
        let perPassage = try JSONDecoder().decode([String: LambadaPassages].self, from: Data(contentsOf: url))
        guard let runs = perPassage[model], runs.hits.count >= passages else { return nil }
        let hits = runs.hits.prefix(passages).filter { $0 }.count
        let logProbability = runs.continuationLogProbabilities.prefix(passages).reduce(0, +)
        return Result(accuracy: Double(hits) / Double(passages),
                      meanContinuationLogProbability: logProbability / Double(passages))
    }
}

/// `hf-lambada-passages.json`: transformers' hit and continuation log-probability per passage.
struct LambadaPassages: Decodable {
    let hits: [Bool]
    let continuationLogProbabilities: [Double]
    enum CodingKeys: String, CodingKey {
        case hits
        case continuationLogProbabilities = "continuation_logprobs"
    }
}
