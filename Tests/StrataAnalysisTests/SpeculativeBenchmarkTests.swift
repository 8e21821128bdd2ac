import Foundation
import StrataAnalysis
import StrataEngine
import Testing

@Suite("Speculative benchmark report and prompts files")
struct SpeculativeBenchmarkTests {
    /// Speculation counts with the given timings: verify passes and seconds by batch size.
    func speculation(drafted: Int, accepted: Int, verify: [Int: (passes: Int, seconds: Double)],
                     draftSteps: Int = 0, draftSeconds: Double = 0) -> SpeculationStats {
        var stats = SpeculationStats()
        stats.drafted = drafted
        stats.accepted = accepted
        stats.verifyPasses = verify.values.reduce(0) { $0 + $1.passes }
        stats.timings.verifyPasses = verify.mapValues(\.passes)
        stats.timings.verifySeconds = verify.mapValues(\.seconds)
        stats.timings.draftSteps = draftSteps
        stats.timings.draftSeconds = draftSeconds
        return stats
    }

    func result(_ type: PromptType, plain: [DecodeTiming], speculative: [DecodeTiming],
                speculation: SpeculationStats = SpeculationStats(), identical: Bool = true) -> SpeculativePromptResult {
        SpeculativePromptResult(type: type, prompt: "\(type)", promptTokens: 10, generatedTokens: plain[0].tokens + 1,
                                plain: plain, speculative: speculative, speculation: speculation,
                                identicalOutputs: identical, firstDifference: identical ? nil : 3)
    }

    @Test("overall and by-type tokens/s pool tokens and time; identity is all-or-nothing per group")
    func aggregation() throws {
        let results = [
            result(.code, plain: [DecodeTiming(tokens: 100, seconds: 1), DecodeTiming(tokens: 100, seconds: 1)],
                   speculative: [DecodeTiming(tokens: 100, seconds: 0.5), DecodeTiming(tokens: 100, seconds: 0.5)],
                   speculation: speculation(drafted: 30, accepted: 20, verify: [1: (5, 0.05), 4: (10, 0.2)])),
            result(.code, plain: [DecodeTiming(tokens: 10, seconds: 1)], speculative: [DecodeTiming(tokens: 10, seconds: 1)],
                   speculation: speculation(drafted: 10, accepted: 0, verify: [1: (5, 0.05), 3: (5, 0.1)])),
            result(.prose, plain: [DecodeTiming(tokens: 50, seconds: 0.5)], speculative: [DecodeTiming(tokens: 50, seconds: 0.25)],
                   speculation: speculation(drafted: 4, accepted: 4, verify: [5: (1, 0.1)]), identical: false),
        ]
        let report = SpeculativeBenchmarkReport(draftSource: "ngram", generatedTokens: 128, repetitions: 2, prompts: results)

        #expect(report.overall.prompts == 3)
        #expect(report.overall.plainTokens == 260 && report.overall.speculativeTokens == 260)
        #expect(abs(report.overall.plainTokensPerSecond - 260 / 3.5) < 1e-9)
        #expect(abs(report.overall.speculativeTokensPerSecond - 260 / 2.25) < 1e-9)
        // Pooled: 3.5 s against 2.25 s for the same tokens; the mean of the per-prompt ratios
        // (2, 1, 2) would say 1.67.
        #expect(abs(report.overall.speedup - 3.5 / 2.25) < 1e-9)
        #expect(!report.overall.identicalOutputs)
        #expect(report.overall.speculation.drafted == 44 && report.overall.speculation.accepted == 24)
        #expect(report.overall.speculation.timings.verifyPasses == [1: 10, 3: 5, 4: 10, 5: 1])

        #expect(Set(report.byType.keys) == [.code, .prose])
        let code = try #require(report.byType[.code])
        #expect(code.prompts == 2 && code.identicalOutputs)
        #expect(abs(code.plainTokensPerSecond - 210 / 3.0) < 1e-9)
        #expect(abs(code.speculativeTokensPerSecond - 210 / 2.0) < 1e-9)
        #expect(abs(code.speedup - 1.5) < 1e-9)
        #expect(abs(code.speculation.acceptanceRate - 0.5) < 1e-9)
        let prose = try #require(report.byType[.prose])
        #expect(!prose.identicalOutputs && abs(prose.speedup - 2) < 1e-9)
        #expect(report.differingPrompts.map(\.type) == [.prose])
    }

    @Test("cost model: c and v(k) relative to the plain step, prediction from the measured rounds")
    func costModel() {
        // T = 1 s / 100 tokens = 10 ms. Two plain rounds of 10 ms, four rounds verifying 3
        // tokens at 15 ms; 8 draft steps of 2.5 ms; α = 4 / 8.
        let stats = speculation(drafted: 8, accepted: 4, verify: [1: (2, 0.02), 3: (4, 0.06)], draftSteps: 8, draftSeconds: 0.02)
        let summary = SpeculativeSummary(results: [
            result(.code, plain: [DecodeTiming(tokens: 100, seconds: 1)], speculative: [DecodeTiming(tokens: 100, seconds: 0.8)],
                   speculation: stats),
        ])
        let cost = summary.costModel
        #expect(abs(cost.plainStepSeconds - 0.01) < 1e-12)
        #expect(abs(cost.draftStepCost - 0.25) < 1e-9)
        #expect(abs(cost.verifyCost[1]! - 1) < 1e-9 && abs(cost.verifyCost[3]! - 1.5) < 1e-9)
        #expect(cost.acceptanceRate == 0.5 && cost.meanDraftLength == 2)
        // Drafting rounds: E = (1 − 0.5³) / 0.5 = 1.75 tokens for γ·c + v(3) = 0.5 + 1.5 = 2 steps;
        // plain rounds: 1 token for 1 step. (4 · 1.75 + 2) / (4 · 2 + 2) = 0.9.
        #expect(abs((cost.predictedSpeedup ?? 0) - 0.9) < 1e-9)
        #expect(abs(cost.measuredSpeedup - 1.25) < 1e-9)
    }

    @Test("JSON: the overall keys at the top, the same keys under by_type, batch sizes as string keys")
    func json() throws {
        let report = SpeculativeBenchmarkReport(draftSource: "ngram", generatedTokens: 16, repetitions: 1, prompts: [
            result(.chat, plain: [DecodeTiming(tokens: 15, seconds: 0.5)], speculative: [DecodeTiming(tokens: 15, seconds: 0.25)],
                   speculation: speculation(drafted: 4, accepted: 2, verify: [1: (3, 0.1), 3: (2, 0.1)])),
        ])
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any])
        let keys = ["plain_tokens_per_second", "speculative_tokens_per_second", "speedup", "identical_outputs"]
        let byType = try #require(object["by_type"] as? [String: [String: Any]])
        #expect(Array(byType.keys) == ["chat"])
        for key in keys {
            #expect(object[key] != nil, "\(key)")
            #expect(byType["chat"]?[key] != nil, "by_type.chat.\(key)")
        }
        #expect(object["identical_outputs"] as? Bool == true)
        #expect(object["speedup"] as? Double == 2)
        let cost = try #require(object["cost_model"] as? [String: Any])
        #expect((cost["verify_cost"] as? [String: Double])?.keys.sorted() == ["1", "3"])
        #expect((object["prompts"] as? [[String: Any]])?.first?["type"] as? String == "chat")
        // Not measured: neither the ceiling nor the curve is written.
        #expect(object["copy_draft_ceiling"] == nil && object["verify_curve"] == nil)
    }

    @Test("copy-draft ceiling: decoded tokens over the ceiling's steps, pooled over the prompts that have one")
    func copyDraftCeiling() throws {
        var first = result(.code, plain: [DecodeTiming(tokens: 15, seconds: 0.5)], speculative: [DecodeTiming(tokens: 15, seconds: 0.4)])
        var second = result(.code, plain: [DecodeTiming(tokens: 31, seconds: 1)], speculative: [DecodeTiming(tokens: 31, seconds: 0.8)])
        let prose = result(.prose, plain: [DecodeTiming(tokens: 15, seconds: 0.5)], speculative: [DecodeTiming(tokens: 15, seconds: 0.5)])
        first.copyCeilingSteps = 10
        second.copyCeilingSteps = 20
        let report = SpeculativeBenchmarkReport(draftSource: "ngram", generatedTokens: 32, repetitions: 1,
                                                prompts: [first, second, prose], verifyCurve: [1: 1, 2: 1.1])
        // (15 + 31) decoded tokens in 30 steps; the prose prompt has no figure and is left out.
        #expect(abs((report.overall.copyDraftCeiling ?? 0) - 46.0 / 30) < 1e-12)
        #expect(abs((report.byType[.code]?.copyDraftCeiling ?? 0) - 46.0 / 30) < 1e-12)
        #expect(report.byType[.prose]?.copyDraftCeiling == nil)
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any])
        #expect(abs((object["copy_draft_ceiling"] as? Double ?? 0) - 46.0 / 30) < 1e-12)
        #expect(object["verify_curve"] as? [String: Double] == ["1": 1, "2": 1.1])
        #expect((object["prompts"] as? [[String: Any]])?.first?["copy_draft_ceiling"] as? Double == 1.5)
    }

    func parse(_ text: String) throws(PromptFileError) -> [BenchmarkPrompt] {
        try BenchmarkPrompts.parse(Data(text.utf8), path: "prompts.jsonl")
    }

    @Test("prompts files: JSONL and JSON arrays parse; errors name the file, the line or entry, and the field")
    func promptsFiles() throws {
        let jsonl = """
            {"type": "code", "prompt": "def f(x):"}

            {"type": "chat", "prompt": "Hello", "note": "extra fields are ignored"}
            """
        #expect(try parse(jsonl) == [BenchmarkPrompt(type: .code, prompt: "def f(x):"), BenchmarkPrompt(type: .chat, prompt: "Hello")])
        #expect(try parse(#" [{"type": "prose", "prompt": "Call me Ishmael."}]"#) == [BenchmarkPrompt(type: .prose, prompt: "Call me Ishmael.")])

        #expect(throws: PromptFileError(path: "prompts.jsonl", location: "line 2", reason: "not valid JSON (JSONL needs one object per line)")) {
            try parse(#"{"type": "code", "prompt": "a"}"# + "\n{\"type\": \"code\", \"prompt\": ")
        }
        let unknown = #"field "type": expected "code", "prose" or "chat", found "poetry""#
        #expect(throws: PromptFileError(path: "prompts.jsonl", location: "line 1", reason: unknown)) {
            try parse(#"{"type": "poetry", "prompt": "Shall I compare thee"}"#)
        }
        #expect(throws: PromptFileError(path: "prompts.jsonl", location: "entry 2", reason: #"field "prompt": expected a string, found a number or boolean"#)) {
            try parse(#"[{"type": "code", "prompt": "x"}, {"type": "code", "prompt": 3}]"#)
        }
        #expect(throws: PromptFileError(path: "prompts.jsonl", location: "line 1", reason: #"missing field "prompt""#)) {
            try parse(#"{"type": "code"}"#)
        }
        #expect(throws: PromptFileError.self) { try parse(#"[{"type": "code", "prompt": "x"}"#) }
        #expect(throws: PromptFileError.self) { try parse("\n\n") }

        let missing = "/nonexistent/prompts-\(UUID()).jsonl"
        #expect(throws: PromptFileError(path: missing, location: nil, reason: "no such file")) {
            try BenchmarkPrompts.load(path: missing)
        }
        #expect(String(describing: PromptFileError(path: "p.jsonl", location: "line 4", reason: unknown))
            == "p.jsonl, line 4: " + unknown)
    }

    @Test("the bundled prompts cover code, prose and chat with several prompts each")
    func bundledPrompts() {
        let counts = Dictionary(grouping: BenchmarkPrompts.bundled, by: \.type).mapValues(\.count)
        #expect(Set(counts.keys) == Set(PromptType.allCases))
        #expect(counts.values.allSatisfy { (3...4).contains($0) })
    }
}
