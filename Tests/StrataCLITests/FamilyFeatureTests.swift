import Foundation
import Testing

/// Every command on every family: the tiny checkpoints of Qwen3, Llama 3, Phi-3 and Gemma 3
/// (made by transformers and llama.cpp's converter, `StrataEngineTests/Fixtures/architectures`;
/// their logits are checked against transformers there) go through inspect, bench, analyze,
/// plan, eval compare and greedy speculative generation, whose output must equal plain greedy.
@Suite("Every feature on every family", .serialized)
struct FamilyFeatureTests {
    static let families = ["qwen3", "llama3", "phi3", "gemma3"]

    static func fixture(_ family: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("StrataEngineTests/Fixtures/architectures/\(family)-tiny.gguf").path
    }

    @Test(arguments: families)
    func commandsRunOnTheFamily(family: String) throws {
        let model = Self.fixture(family)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-family-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let inspect = try StrataRun(["inspect", "--model", model, "--json"])
        #expect(inspect.status == 0, "\(inspect.error)")
        let config = try #require(try inspect.json()["config"] as? [String: Any])
        #expect(config["architecture"] as? String == family.replacingOccurrences(of: "llama3", with: "llama"))

        let bench = try StrataRun(["bench", "--model", model, "--prompt-tokens", "16", "--gen-tokens", "4",
                                   "--batch-sizes", "1,2", "--repetitions", "1", "--threads", "1", "--json"])
        #expect(bench.status == 0, "\(bench.error)")
        #expect((try bench.json()["tokens_per_second"] as? Double ?? 0) > 0)

        // the bundled calibration text, in one short window
        let analysis = folder.appendingPathComponent("analysis.json").path
        let analyze = try StrataRun(["analyze", "--model", model, "--windows", "1", "--context", "48",
                                     "--lens-positions", "8", "--json", analysis])
        #expect(analyze.status == 0, "\(analyze.error)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: analysis)))
            as? [String: Any])
        let layers = try #require(report["layer_count"] as? Int)
        #expect((report["perplexity_without_attention"] as? [Double])?.count == layers)
        if family == "gemma3" {
            // five sliding-window layers, then a global one, marked in the report and its table
            #expect(report["sliding_window_layers"] as? [Bool] == [true, true, true, true, true, false])
            #expect(report["sliding_window"] as? Int == 8)
            #expect(analyze.output.contains("global in layers 5") && analyze.output.contains("   5*"), "\(analyze.output)")
        } else {
            #expect(report["sliding_window_layers"] == nil)
        }

        let plan = folder.appendingPathComponent("plan.json").path
        let planRun = try StrataRun(["plan", "--model", model, "--method", "block-influence", "--compute-fraction", "0.5",
                                     "--from-analysis", analysis, "--out", plan])
        #expect(planRun.status == 0, "\(planRun.error)")
        let compare = try StrataRun(["eval", "compare", "--model", model, "--plans", plan, "--tasks", "none",
                                     "--perplexity-windows", "1", "--perplexity-context", "48", "--speed-tokens", "0",
                                     "--json", "-"])
        #expect(compare.status == 0, "\(compare.error)")
        #expect(compare.output.contains("perplexity"))

        let prompt = "It is a truth universally acknowledged, that a single man"
        let plain = try StrataRun(["generate", "--model", model, "--prompt", prompt, "--temperature", "0",
                                   "--max-tokens", "24", "--json"])
        #expect(plain.status == 0, "\(plain.error)")
        let expected = try #require(try plain.json()["tokens"] as? [Int])
        for draft in ["early-exit:1", "layers", "ngram"] {
            let speculative = try StrataRun(["generate", "--model", model, "--prompt", prompt, "--temperature", "0",
                                             "--max-tokens", "24", "--json", "--speculative", "--draft", draft],
                                            environment: ["STRATA_PLANS": folder.path])
            #expect(speculative.status == 0, "\(draft): \(speculative.error)")
            #expect(try speculative.json()["tokens"] as? [Int] == expected, "\(family) --draft \(draft)")
        }
    }
}
