import Foundation
import StrataEngine
import StrataTestSupport
import Testing

/// `eval compare --dynamic-exit / --ffn-skip`: per-token depth rows beside the plans, with the
/// compute they measured, and bad values refused with the option named.
@Suite("eval compare with per-token depth")
struct DepthCompareTests {
    /// Calibration text for the exit maps: enough tokens for two 512-token windows.
    static func calibrationFile() throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-exit-calibration-\(UUID()).txt")
        try String(repeating: TinyVocabulary.corpus + "\n", count: 12).write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test("dynamic-exit and FFN-skip rows report the compute they measured")
    func depthRowsMeasureTheirCompute() throws {
        let model = try TinyModels.path(.llama)
        let calibration = try Self.calibrationFile()
        defer { try? FileManager.default.removeItem(at: calibration) }
        let run = try StrataRun(["eval", "compare", "--model", model, "--tasks", "none", "--perplexity-windows", "1",
                                 "--perplexity-context", "32", "--speed-tokens", "0", "--dynamic-exit", "0,1",
                                 "--exit-min-layer", "2", "--calibration", calibration.path, "--exit-windows", "2",
                                 "--ffn-skip", "0", "--json", "-"])
        #expect(run.status == 0, "\(run.error)")
        let entries = try #require(try run.json()["entries"] as? [[String: Any]])
        #expect(entries.map { $0["name"] as? String } == ["full", "exit@0.0", "exit@1.0", "ffn-skip@0.0"])
        guard entries.count == 4 else { return }
        func compute(_ index: Int) -> Double { entries[index]["compute_fraction"] as? Double ?? -1 }
        func depth(_ index: Int) -> [String: Any] { entries[index]["depth"] as? [String: Any] ?? [:] }
        func perplexity(_ index: Int) -> Double { (entries[index]["perplexity"] as? [String: Any])?["perplexity"] as? Double ?? -1 }

        // threshold 0: every token leaves after 2 of the 4 layers; the other two only fill keys and values
        let config = try TinyModels.model(.llama).config
        let cost = SublayerCost(config: config)
        let keyValue = Double(2 * config.hiddenSize * config.kvHeadCount * config.headDimensions)
        #expect(abs(compute(1) - (2 * cost.layer + 2 * keyValue) / cost.total) < 1e-9, "\(compute(1))")
        #expect(depth(1)["exited_fraction"] as? Double == 1)
        #expect(perplexity(1) != perplexity(0))
        // threshold 1 is never reached: the full model, at the full model's perplexity
        #expect(compute(2) == 1 && perplexity(2) == perplexity(0))
        #expect(depth(2)["exited_fraction"] as? Double == 0)
        // FFN skip at 0: the first middle FFN saturates every token, so layer 2's FFN never runs
        let expected = try LayerPlan.full(layerCount: 4).skipping(ffn: [2]).computeFraction(config: config)
        #expect(abs(compute(3) - expected) < 1e-9, "\(compute(3)) against \(expected)")
        #expect(run.error.contains("layers per token"))
    }

    @Test("'match' adds a row per plan at the threshold that runs the plan's compute")
    func matchFindsThePlansCompute() throws {
        let model = try TinyModels.path(.llama)
        let calibration = try Self.calibrationFile()
        let plan = FileManager.default.temporaryDirectory.appendingPathComponent("strata-match-\(UUID()).json")
        // layer 2's FFN off: what FFN skip runs when every token saturates in layer 1
        try #"{"layer_count": 4, "steps": [{"layer": 0}, {"layer": 1}, {"layer": 2, "ffn": false}, {"layer": 3}]}"#
            .write(to: plan, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(at: calibration)
            try? FileManager.default.removeItem(at: plan)
        }
        let run = try StrataRun(["eval", "compare", "--model", model, "--plans", plan.path, "--tasks", "none",
                                 "--perplexity-windows", "1", "--perplexity-context", "64", "--speed-tokens", "0",
                                 "--ffn-skip", "match", "--calibration", calibration.path, "--exit-windows", "2", "--json", "-"])
        #expect(run.status == 0, "\(run.error)")
        let entries = try #require(try run.json()["entries"] as? [[String: Any]])
        #expect(entries.count == 3)
        guard entries.count == 3 else { return }
        let name = entries[2]["name"] as? String ?? ""
        #expect(name.hasPrefix("ffn-skip@") && name.hasSuffix("~" + plan.deletingPathExtension().lastPathComponent), "\(name)")
        let target = entries[1]["compute_fraction"] as? Double ?? -1
        let matched = entries[2]["compute_fraction"] as? Double ?? -1
        #expect(target < 1 && abs(matched - target) < 0.03, "matched \(matched) against \(target)")

        let unplanned = try StrataRun(["eval", "compare", "--model", model, "--tasks", "none", "--speed-tokens", "0",
                                       "--dynamic-exit", "match"])
        #expect(unplanned.status != 0 && unplanned.error.contains("--dynamic-exit match needs --plans"), "\(unplanned.error)")
    }

    @Test("bad per-token depth options are refused with the option named")
    func badDepthOptionsAreRefused() throws {
        let model = try TinyModels.path(.llama)
        let base = ["eval", "compare", "--model", model, "--tasks", "none", "--speed-tokens", "0", "--perplexity-windows", "1",
                    "--perplexity-context", "32"]
        for (arguments, message) in [
            (["--dynamic-exit", "1.5"], "--dynamic-exit takes thresholds between 0 and 1 (or 'match')"),
            (["--ffn-skip", "0.9,x"], "--ffn-skip takes thresholds between 0 and 1 (or 'match')"),
            (["--dynamic-exit", "0.5", "--exit-min-layer", "4"], "--exit-min-layer must be in 1...3"),
            (["--ffn-skip", "0.9", "--ffn-skip-layers", "3-1"], "--ffn-skip-layers takes a range of layers"),
            (["--ffn-skip", "0.9", "--ffn-skip-layers", "1-7"], "beyond the model's 0-3"),
            (["--dynamic-exit", "0.5", "--exit-interval", "0"], "--exit-interval must be at least 1"),
            (["--dynamic-exit", "0.5", "--calibration", "/no/such/text.txt"], "/no/such/text.txt"),
            (["--dynamic-exit", "0.5", "--exit-min-layer", "0"], "--exit-min-layer must be at least 1"),
            (["--exit-min-layer", "2"], "--exit-min-layer applies to --dynamic-exit only"),
            (["--ffn-skip-layers", "1-2"], "--ffn-skip-layers applies to --ffn-skip only"),
        ] {
            let run = try StrataRun(base + arguments)
            #expect(run.status != 0 && run.error.contains(message), "\(arguments): \(run.error)")
        }
    }
}
