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
}
