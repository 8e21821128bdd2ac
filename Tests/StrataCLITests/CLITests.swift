import Foundation
import StrataTestSupport
import Testing

/// Runs the built `strata` binary (it sits beside the test bundle) and captures its output.
struct StrataRun {
    let status: Int32
    let output: String
    let error: String

    /// The built `strata` binary.
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("strata")

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        try process.run()
        let outputData = outputPipe.fileHandleForReading.readDataToEndOfFile()
        let errorData = errorPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        status = process.terminationStatus
        output = String(decoding: outputData, as: UTF8.self)
        error = String(decoding: errorData, as: UTF8.self)
    }

    func json() throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
    }
}

@Suite("strata command line", .serialized)
struct CLITests {
    @Test func generateJSONFollowsTheContract() throws {
        let model = try TestModels.require("smollm2-135m")
        let run = try StrataRun(["generate", "--model", model, "--prompt", "The capital of France is",
                                 "--temperature", "0", "--max-tokens", "12", "--json"])
        #expect(run.status == 0, "\(run.error)")
        let object = try run.json()
        #expect(object["prompt_tokens"] as? [Int] == [504, 3575, 282, 4649, 314])
        // transformers' greedy continuation of this prompt (Tests/StrataEngineTests/Fixtures).
        #expect(object["tokens"] as? [Int] == [7042, 30, 198, 198, 504, 2988, 314, 42, 216, 34, 32, 33])
        #expect(object["text"] as? String == " Paris.\n\nThe answer is: 201")
        #expect(object["stop_reason"] as? String == "length")
        let stats = try #require(object["stats"] as? [String: Any])
        for key in ["prompt_tokens_per_second", "tokens_per_second", "load_seconds"] {
            #expect((stats[key] as? Double ?? -1) > 0, "stats.\(key)")
        }
    }

    @Test func generateStopsAtEndOfGeneration() throws {
        let model = try TestModels.require("smollm2-135m")
        let run = try StrataRun(["generate", "--model", model, "--prompt", "The capital of France is",
                                 "--temperature", "0", "--max-tokens", "48", "--json"])
        let object = try run.json()
        #expect(object["stop_reason"] as? String == "eos")
        #expect((object["tokens"] as? [Int])?.count == 29)
    }

    @Test func inspectAndPerplexityJSON() throws {
        let model = try TestModels.require("smollm2-135m")
        let inspect = try StrataRun(["inspect", "--model", model, "--json"]).json()
        let config = try #require(inspect["config"] as? [String: Any])
        #expect(config["layer_count"] as? Int == 30 && config["architecture"] as? String == "llama")
        #expect((inspect["tensors_by_format"] as? [String: Int])?["Q4_1"] != nil)

        let text = FileManager.default.temporaryDirectory.appendingPathComponent("strata-cli-\(UUID()).txt")
        try String(repeating: "It is a truth universally acknowledged. ", count: 40).write(to: text, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: text) }
        let run = try StrataRun(["eval", "perplexity", "--model", model, "--file", text.path, "--context", "64", "--windows", "2", "--json"])
        #expect(run.status == 0, "\(run.error)")
        let report = try run.json()
        #expect(report["windows"] as? Int == 2 && report["tokens_scored"] as? Int == 126)
        #expect((report["perplexity"] as? Double ?? 0) > 1)
    }

    /// The model the plumbing tests run: the tiny generated one, and SmolLM2 in the full tier.
    static let plumbingModels = TestModel.mechanics()

    @Test(arguments: plumbingModels)
    func benchJSONHasSpeedBatchCostAndMemory(testModel: TestModel) throws {
        let model = try testModel.path()
        let run = try StrataRun(["bench", "--model", model, "--prompt-tokens", "16", "--gen-tokens", "4", "--batch-sizes", "1,2,4",
                                 "--repetitions", "1", "--threads", "1", "--json"])
        #expect(run.status == 0, "\(run.error)")
        let object = try run.json()
        for key in ["model", "commit", "machine", "prompt_tokens_per_second", "tokens_per_second", "peak_rss_bytes"] {
            #expect(object[key] != nil, "\(key)")
        }
        #expect((object["prompt_tokens_per_second"] as? Double ?? 0) > 0 && (object["tokens_per_second"] as? Double ?? 0) > 0)
        let cost = try #require(object["batch_cost"] as? [String: Double])
        let milliseconds = try #require(object["batch_milliseconds"] as? [String: Double])
        #expect(cost.keys.sorted() == ["1", "2", "4"] && cost["1"] == 1)
        for size in ["2", "4"] {
            let single = milliseconds["1"] ?? 0
            #expect(single > 0 && abs((cost[size] ?? 0) - (milliseconds[size] ?? 0) / single) < 1e-9, "n=\(size)")
        }
        #expect((object["peak_rss_bytes"] as? Int ?? 0) > 0)
    }

    @Test(arguments: plumbingModels)
    func benchSpeculativeJSONComparesBothModesByType(testModel: TestModel) throws {
        let model = try testModel.path()
        // One thread: on a shared 2-core machine two spinning threads contend with other jobs.
        let run = try StrataRun(["bench", "--speculative", "--model", model, "--gen-tokens", "16", "--repetitions", "1",
                                 "--json", "--threads", "1"])
        #expect(run.status == 0, "\(run.error)")
        #expect(!run.error.contains("WARNING"), "\(run.error)")
        let object = try run.json()
        let keys = ["plain_tokens_per_second", "speculative_tokens_per_second", "speedup", "identical_outputs"]
        for key in keys + ["model", "commit", "machine", "threads", "draft", "gen_tokens", "prompts", "cost_model",
                           "acceptance_rate", "mean_accepted_per_verify", "verify_passes"] {
            #expect(object[key] != nil, "\(key)")
        }
        #expect(object["identical_outputs"] as? Bool == true)
        #expect(object["draft"] as? String == "auto" && object["gen_tokens"] as? Int == 16 && object["threads"] as? Int == 1)
        let plain = try #require(object["plain_tokens_per_second"] as? Double)
        let speculative = try #require(object["speculative_tokens_per_second"] as? Double)
        #expect(plain > 0 && speculative > 0)
        #expect(abs((object["speedup"] as? Double ?? 0) - speculative / plain) < 1e-9)
        // Identical outputs decode the same number of tokens in both modes.
        #expect(object["plain_tokens"] as? Int == object["speculative_tokens"] as? Int)
        // The best n-gram drafting could do on these outputs is at least plain decoding.
        #expect((object["copy_draft_ceiling"] as? Double ?? 0) >= 1)
        let curve = try #require(object["verify_curve"] as? [String: Double])
        #expect(curve.count == 9 && curve["1"] == 1, "\(curve)")

        let byType = try #require(object["by_type"] as? [String: [String: Any]])
        #expect(byType.keys.sorted() == ["chat", "code", "prose"])
        for (type, summary) in byType {
            for key in keys { #expect(summary[key] != nil, "by_type.\(type).\(key)") }
            #expect(summary["identical_outputs"] as? Bool == true, "by_type.\(type)")
        }
        let prompts = try #require(object["prompts"] as? [[String: Any]])
        #expect(prompts.count == byType.values.reduce(0) { $0 + ($1["prompts"] as? Int ?? 0) })
        let cost = try #require(object["cost_model"] as? [String: Any])
        #expect((cost["plain_step_milliseconds"] as? Double ?? 0) > 0)
        #expect((cost["verify_cost"] as? [String: Double])?["1"] != nil)
    }

    @Test func benchSpeculativeRefusesBadPromptsFiles() throws {
        let missing = try StrataRun(["bench", "--speculative", "--prompts", "/nonexistent/prompts.jsonl"])
        #expect(missing.status != 0 && missing.error.contains("/nonexistent/prompts.jsonl: no such file"), "\(missing.error)")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("strata-prompts-\(UUID()).jsonl")
        try #"{"type": "code", "prompt": "def f():"}\#n{"type": "poem", "prompt": "Roses"}"#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let unknown = try StrataRun(["bench", "--speculative", "--prompts", file.path])
        #expect(unknown.status != 0 && unknown.error.contains("line 2") && unknown.error.contains(#"found "poem""#), "\(unknown.error)")

        let withoutSpeculative = try StrataRun(["bench", "--prompts", file.path])
        #expect(withoutSpeculative.status != 0 && withoutSpeculative.error.contains("--prompts needs --speculative"))
    }

    @Test func badInputGivesAClearErrorAndNonZeroExit() throws {
        let notGGUF = FileManager.default.temporaryDirectory.appendingPathComponent("strata-cli-\(UUID()).gguf")
        try Data("definitely not a model".utf8).write(to: notGGUF)
        defer { try? FileManager.default.removeItem(at: notGGUF) }
        let run = try StrataRun(["generate", "--model", notGGUF.path, "--prompt", "hi"])
        #expect(run.status != 0)
        #expect(run.error.contains("not a GGUF file") && run.error.contains(notGGUF.path))

        let unknown = try StrataRun(["generate", "--model", "no-such-model", "--prompt", "hi"])
        #expect(unknown.status != 0 && unknown.error.contains("unknown model 'no-such-model'"))

        let badOption = try StrataRun(["generate", "--prompt", "hi", "--top-p", "2"])
        #expect(badOption.status != 0 && badOption.error.contains("--top-p"))

        // a negative number after a space is the option's value (it was "Missing value")
        for (option, value, message) in [("--max-tokens", "-5", "--max-tokens must be 0 or more, found -5"),
                                         ("--temperature", "-1", "--temperature must be 0 or more, found -1.0"),
                                         ("--seed", "-1", "The value '-1' is invalid for '--seed")] {
            let negative = try StrataRun(["generate", "--prompt", "hi", option, value])
            #expect(negative.status != 0 && negative.error.contains(message), "\(option) \(value): \(negative.error)")
        }
    }

    @Test("eval compare --json - writes the JSON alone on stdout, the table on stderr")
    func compareJSONOnStdoutIsJSONOnly() throws {
        let model = try TinyModels.path(.llama)
        let plan = FileManager.default.temporaryDirectory.appendingPathComponent("strata-compare-\(UUID()).json")
        try #"{"layer_count": 4, "steps": [{"layer": 0}, {"layer": 2}, {"layer": 3}]}"#.write(to: plan, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: plan) }
        let run = try StrataRun(["eval", "compare", "--model", model, "--plans", plan.path, "--tasks", "none",
                                 "--perplexity-windows", "1", "--perplexity-context", "32", "--speed-tokens", "0", "--json", "-"])
        #expect(run.status == 0, "\(run.error)")
        let object = try run.json()
        #expect((object["entries"] as? [Any])?.count == 2, "\(object.keys)")
        #expect(!run.error.isEmpty, "the table goes to stderr")
    }

    @Test("draft options without --speculative are refused instead of ignored")
    func draftOptionsNeedSpeculative() throws {
        let model = try TinyModels.path(.llama)
        for (option, value) in [("--draft", "ngram"), ("--draft-max", "3"), ("--draft-confidence", "0.2"), ("--draft-domain", "code")] {
            for command in [["generate", "--prompt", "hi", "--max-tokens", "2"], ["bench", "--prompt-tokens", "8", "--gen-tokens", "2"]] {
                let run = try StrataRun(command + ["--model", model, option, value])
                #expect(run.status != 0 && run.error.contains("\(option) applies to self-speculative decoding only"),
                        "\(command[0]) \(option): \(run.error)")
            }
        }
        let speculative = try StrataRun(["generate", "--model", model, "--prompt", "hi", "--max-tokens", "2", "--speculative",
                                         "--draft", "ngram", "--draft-max", "3"])
        #expect(speculative.status == 0, "\(speculative.error)")
    }

    @Test(arguments: plumbingModels)
    func draftLayersSavesItsPlanAndStartsWarmNextTime(testModel: TestModel) throws {
        let model = try testModel.path()
        let layerCount = try testModel.load().config.layerCount
        let plans = FileManager.default.temporaryDirectory.appendingPathComponent("strata-plans-\(UUID())")
        defer { try? FileManager.default.removeItem(at: plans) }
        let arguments = ["generate", "--model", model, "--prompt", "It is a truth universally acknowledged, that",
                         "--temperature", "0", "--max-tokens", "40", "--json", "--speculative", "--draft", "layers",
                         "--draft-domain", "prose"]
        let cold = try StrataRun(arguments, environment: ["STRATA_PLANS": plans.path])
        #expect(cold.status == 0, "\(cold.error)")
        let coldSpeculation = try #require(try cold.json()["speculation"] as? [String: Any])
        #expect(coldSpeculation["draft_plan"] as? String == "layers")
        #expect((coldSpeculation["search_evaluations"] as? Int ?? 0) > 0)
        let name = URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
        let saved = plans.appendingPathComponent("\(name)-prose.json").path
        #expect(cold.error.contains("saved to \(saved)"))
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: saved))) as? [String: Any])
        #expect(plan["method"] as? String == "layers" && plan["layer_count"] as? Int == layerCount)

        let warm = try StrataRun(arguments, environment: ["STRATA_PLANS": plans.path])
        let warmSpeculation = try #require(try warm.json()["speculation"] as? [String: Any])
        #expect(warmSpeculation["draft_plan"] as? String == "layers(warm start)")
        #expect(try warm.json()["tokens"] as? [Int] == cold.json()["tokens"] as? [Int])

        try "{not json".write(toFile: saved, atomically: true, encoding: .utf8)
        let damaged = try StrataRun(arguments, environment: ["STRATA_PLANS": plans.path])
        #expect(damaged.status == 0 && damaged.error.contains("ignoring the saved draft plan \(saved)"))
    }

    @Test func analyzeRedrawsItsReportFromJSON() throws {
        let model = try TestModels.require("smollm2-135m")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-analyze-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("a.json").path
        let first = directory.appendingPathComponent("first.html").path
        let redrawn = directory.appendingPathComponent("redrawn.html").path
        let measured = try StrataRun(["analyze", "--model", model, "--context", "32", "--windows", "1", "--no-ablations",
                                      "--lens-positions", "4", "--json", json, "--report", first])
        #expect(measured.status == 0, "\(measured.error)")
        let again = try StrataRun(["analyze", "--from-json", json, "--report", redrawn])
        #expect(again.status == 0, "\(again.error)")
        #expect(again.output == measured.output)
        #expect(try String(contentsOfFile: redrawn, encoding: .utf8) == String(contentsOfFile: first, encoding: .utf8))
        let notReport = try StrataRun(["analyze", "--from-json", first, "--report", directory.appendingPathComponent("x.html").path])
        #expect(notReport.status != 0 && notReport.error.contains("is not an analysis report"))

        // an existing file is kept unless --force says otherwise; a missing folder is named up front
        try "mine".write(toFile: redrawn, atomically: true, encoding: .utf8)
        let kept = try StrataRun(["analyze", "--from-json", json, "--report", redrawn])
        #expect(kept.status != 0 && kept.error.contains("\(redrawn) exists"))
        #expect(try String(contentsOfFile: redrawn, encoding: .utf8) == "mine")
        let forced = try StrataRun(["analyze", "--from-json", json, "--report", redrawn, "--force"])
        #expect(forced.status == 0, "\(forced.error)")
        #expect(try String(contentsOfFile: redrawn, encoding: .utf8) == String(contentsOfFile: first, encoding: .utf8))
        // a report whose lists do not fit its layer count is refused, not drawn (it crashed)
        var object = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        object["layer_count"] = -3
        let broken = directory.appendingPathComponent("broken.json").path
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: broken))
        let refused = try StrataRun(["analyze", "--from-json", broken])
        #expect(refused.status != 0 && refused.error.contains("layer_count is -3"), "\(refused.error)")
        object["layer_count"] = 30
        object["block_influence"] = [0.5, 0.25]
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: broken))
        let short = try StrataRun(["analyze", "--from-json", broken])
        #expect(short.status != 0 && short.error.contains("block_influence has 2 entries"), "\(short.error)")
        let nowhere = directory.appendingPathComponent("missing/r.html").path
        let missingFolder = try StrataRun(["analyze", "--from-json", json, "--report", nowhere])
        #expect(missingFolder.status != 0 && missingFolder.error.contains("does not exist"))
    }
}

@Suite("strata plan options")
struct CLIPlanTests {
    @Test func skipShorthandsEqualTheSamePlanFile() throws {
        let model = try TestModels.require("smollm2-135m")
        let steps = (0..<30).filter { ![3, 7, 8, 9].contains($0) }.map { layer in
            #"{"layer": \#(layer), "attention": \#(layer != 20), "ffn": \#(layer != 25)}"#
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-plan-\(UUID()).json")
        try #"{"layer_count": 30, "steps": [\#(steps.joined(separator: ","))]}"#.write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        let common = ["generate", "--model", model, "--prompt", "The capital of France is", "--temperature", "0",
                      "--max-tokens", "10", "--json", "--exact"]
        let shorthand = try StrataRun(common + ["--skip-layers", "3,7-9", "--skip-attention", "20", "--skip-ffn", "25"]).json()
        let file = try StrataRun(common + ["--plan", path.path]).json()
        let full = try StrataRun(common).json()
        #expect(shorthand["tokens"] as? [Int] == file["tokens"] as? [Int])
        #expect(shorthand["tokens"] as? [Int] != full["tokens"] as? [Int])
    }

    @Test func badPlansAreRefusedClearly() throws {
        let model = try TestModels.require("smollm2-135m")
        let common = ["generate", "--model", model, "--prompt", "hi", "--max-tokens", "1"]
        let outOfRange = try StrataRun(common + ["--skip-layers", "31"])
        #expect(outOfRange.status != 0 && outOfRange.error.contains("layer 31 does not exist"))
        let garbage = try StrataRun(common + ["--skip-layers", "3-x"])
        #expect(garbage.status != 0 && garbage.error.contains("invalid layer list '3-x'"))
        let everything = try StrataRun(common + ["--skip-layers", "0-29"])
        #expect(everything.status != 0 && everything.error.contains("runs no sublayer"))
        let noSublayer = try StrataRun(common + ["--skip-attention", "0-29", "--skip-ffn", "0-29"])
        #expect(noSublayer.status != 0 && noSublayer.error.contains("runs no sublayer"))
        let huge = try StrataRun(common + ["--skip-layers", "0-9223372036854775807"])
        #expect(huge.status != 0 && huge.error.contains("invalid layer list"))
        let threads = try StrataRun(common + ["--threads", "100000"])
        #expect(threads.status != 0 && threads.error.contains("--threads must be at most"))
        let typo = try StrataRun(common + ["--speculative", "--draft", "ngarm"])
        #expect(typo.status != 0 && typo.error.contains("auto, ngram, layers, early-exit:E, shortcut:E[:V] or a plan file"))
        for bad in ["shortcut:0", "shortcut:x", "shortcut:3:0", "shortcut:3:4:5"] {
            let shortcut = try StrataRun(common + ["--speculative", "--draft", bad])
            #expect(shortcut.status != 0 && shortcut.error.contains("expected shortcut:E or shortcut:E:V"), "\(bad): \(shortcut.error)")
        }
        let bothNumerics = try StrataRun(common + ["--exact", "--numerics", "fast"])
        #expect(bothNumerics.status != 0 && bothNumerics.error.contains("--exact and --numerics fast disagree"))
        let systemAlone = try StrataRun(common + ["--system", "Be brief."])
        #expect(systemAlone.status != 0 && systemAlone.error.contains("--system only applies with --chat"))
        let shortWindows = try StrataRun(["eval", "perplexity", "--model", model, "--file", "/dev/null", "--llama-cpp", "--context", "2"])
        #expect(shortWindows.status != 0 && shortWindows.error.contains("--context must be at least 4"))
        let missing = try StrataRun(common + ["--plan", "/nonexistent/plan.json"])
        #expect(missing.status != 0 && missing.error.contains("/nonexistent/plan.json"))
    }
}
