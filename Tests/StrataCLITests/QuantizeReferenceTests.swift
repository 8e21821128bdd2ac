import Foundation
import StrataTestSupport
import Testing

/// Files `strata quantize` writes, checked by engines we did not write: the `gguf` package
/// reads and dequantizes every tensor, and transformers' GGUF loader (float32) decodes the
/// same greedy tokens as Strata's exact path on the same file.
@Suite("strata quantize, checked by gguf and transformers", .serialized)
struct QuantizeReferenceTests {
    /// (model, quantize arguments, prompt): a llama.cpp mix that spreads over Q4_0, Q4_K, Q5_0,
    /// Q5_1, Q5_K and Q8_0 on Qwen's widths, and a layer-wise mix of Q3_K and Q4_K FFN down
    /// projections (Q4_0 and Q5_0 where SmolLM2's 576-column rows need block-32 types).
    static let cases: [(model: String, arguments: [String], prompt: String)] = [
        ("qwen2.5-coder-0.5b", ["--type", "Q3_K_M"], "def fibonacci(n):"),
        ("smollm2-135m", ["--target-bpw", "4.6", "--by", "block-influence"], "The capital of France is"),
    ]

    /// The SmolLM2 mix in the default tier (a CI run stays within 15 minutes); the Qwen mix too
    /// in the full tier (`STRATA_TEST_TIER=full`).
    @Test(.timeLimit(.minutes(3)), arguments: TestTier.size(reduced: [1], full: Array(cases.indices)))
    func transformersDecodesAQuantizedFileLikeStrata(index: Int) throws {
        let (name, arguments, prompt) = Self.cases[index]
        let model = try TestModels.require(name)
        _ = try TestPython.requireReference()
        let folder = try ExportCommandTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var extra = arguments
        if arguments.contains("--target-bpw") {
            // block influence needs no ablations: a short calibration is enough to order the layers
            let report = folder + "/analysis.json"
            let analyze = try StrataRun(["analyze", "--model", model, "--windows", "1", "--context", "128", "--no-ablations",
                                         "--json", report])
            try #require(analyze.status == 0, "\(analyze.error)")
            extra += ["--importance", report]
        }
        let out = folder + "/quantized.gguf"
        let quantize = try StrataRun(["quantize", "--model", model, "--out", out, "--json"] + extra)
        try #require(quantize.status == 0, "\(quantize.error)")
        let formats = try #require(quantize.json()["tensors_by_format"] as? [String: Int])

        let read = try ExportCommandTests.reference(["types", out], timeout: 120)
        #expect(read["ok"] as? Bool == true, "gguf: \(read["problems"] ?? "")")
        let types = try #require(read["types"] as? [String: String])
        var counted: [String: Int] = [:]
        for type in types.values { counted[type, default: 0] += 1 }
        #expect(counted == formats, "gguf sees \(counted), Strata wrote \(formats)")

        let count = 8
        let strata = try StrataRun(["generate", "--model", out, "--exact", "--temperature", "0", "--max-tokens", String(count),
                                    "--prompt", prompt, "--json"])
        try #require(strata.status == 0, "\(strata.error)")
        let generated = try strata.json()
        let promptTokens = try #require(generated["prompt_tokens"] as? [Int])
        let expected = try #require(generated["tokens"] as? [Int])
        let greedy = try ExportCommandTests.reference(["greedy", out, "--tokens", promptTokens.map(String.init).joined(separator: ","),
                                                       "--count", String(count)], timeout: 150)
        let tokens = try #require(greedy["tokens"] as? [Int])
        #expect(Array(tokens.prefix(expected.count)) == expected,
                "\(name) \(arguments): transformers \(tokens) (top-2 margins \(greedy["margins"] ?? "")), Strata \(expected)")
    }
}
