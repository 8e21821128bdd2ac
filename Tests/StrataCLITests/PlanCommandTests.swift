import Foundation
import StrataFormats
import StrataTestSupport
import Testing

@Suite("strata plan", .serialized)
struct PlanCommandTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    @Test("refuses bad input with a clear message and no plan file")
    func refusesBadInput() throws {
        let model = try TestModels.require("smollm2-135m")
        let out = path("bad.json")
        let cases: [([String], String)] = [
            (["--method", "magic", "--remove", "2"], "magic"),
            (["--method", "block-influence", "--remove", "30"], "1...29"),
            (["--method", "unified", "--remove", "29"], "1...28"),
            (["--method", "unified", "--compute-fraction", "1.5"], "between 0 and 1"),
            (["--method", "unified", "--compute-fraction", "0.001"], "removes nothing"),
            (["--method", "unified"], "--remove N or --compute-fraction F"),
            (["--method", "unified", "--remove", "2", "--compute-fraction", "0.1"], "not both"),
            (["--method", "attention-only", "--compute-fraction", "0.5"], "at most"),
            (["--method", "unified", "--compute-fraction", "0.1,x"], "found 'x'"),
            (["--method", "unified", "--compute-fraction", "0.1,0.1"], "twice"),
        ]
        for (arguments, message) in cases {
            let run = try StrataRun(["plan", "--model", model, "--out", out] + arguments)
            #expect(run.status != 0, "\(arguments)")
            #expect(run.error.contains(message), "\(arguments): \(run.error)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    @Test("writes a unified plan, and refuses to overwrite it without --force")
    func writesAndProtectsThePlan() throws {
        let model = try TestModels.require("smollm2-135m")
        let out = path("unified.json")
        let first = try StrataRun(["plan", "--model", model, "--method", "unified", "--remove", "14", "--out", out])
        #expect(first.status == 0, "\(first.error)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let layers = (object["steps"] as? [[String: Any]])?.compactMap { $0["layer"] as? Int }
        #expect(layers == [0, 1] + Array(stride(from: 3, through: 29, by: 2)))
        #expect(object["method"] as? String == "unified")
        #expect((object["notes"] as? String)?.contains("of layer compute") == true)
        let again = try StrataRun(["plan", "--model", model, "--method", "unified", "--remove", "3", "--out", out])
        #expect(again.status != 0 && again.error.contains("--force"))
        let forced = try StrataRun(["plan", "--model", model, "--method", "unified", "--remove", "3", "--out", out, "--force"])
        #expect(forced.status == 0, "\(forced.error)")
    }

    @Test("a list of fractions writes one plan per fraction, named by percentage")
    func severalFractions() throws {
        let model = try TestModels.require("smollm2-135m")
        let run = try StrataRun(["plan", "--model", model, "--method", "unified", "--compute-fraction", "0.1,0.2",
                                 "--out", path("unified.json")])
        #expect(run.status == 0, "\(run.error)")
        for (name, removed) in [("unified-10.json", 3), ("unified-20.json", 6)] {
            let object = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(name)))) as? [String: Any])
            #expect((object["steps"] as? [[String: Any]])?.count == 30 - removed, "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: path("unified.json")))
        // Either existing file stops the command before anything is written.
        let again = try StrataRun(["plan", "--model", model, "--method", "unified", "--compute-fraction", "0.1,0.3",
                                   "--out", path("unified.json")])
        #expect(again.status != 0 && again.error.contains("unified-10.json") && again.error.contains("--force"), "\(again.error)")
        #expect(!FileManager.default.fileExists(atPath: path("unified-30.json")))
    }

    @Test("block-influence and ffn-only plans take their scores from an analysis file")
    func usesAnalysisFile() throws {
        let model = try TestModels.require("smollm2-135m")
        let analysis = path("analysis.json")
        var influence = [Double](repeating: 0.5, count: 30)
        influence[7] = 0.01
        influence[20] = 0.02
        var ffn = [Double](repeating: 30, count: 30)
        ffn[12] = 21
        let report: [String: Any] = [
            "model": "synthetic", "layer_count": 30, "windows": 1, "context": 8, "text": "none",
            "block_influence": influence, "angular_distance": [[Double]](), "lim": [Double](), "zd": [Double](),
            "attention_contribution": [Double](), "ffn_contribution": [Double](), "logit_lens_agreement": [Double](),
            "logit_lens_kl": [Double](), "logit_lens_positions": 0, "perplexity_without_layer": [Double](),
            "perplexity_without_attention": [Double](), "perplexity_without_ffn": ffn, "seconds": 0,
        ]
        try JSONSerialization.data(withJSONObject: report).write(to: URL(fileURLWithPath: analysis))

        let influenceOut = path("bi.json")
        let run = try StrataRun(["plan", "--model", model, "--method", "block-influence", "--remove", "2",
                                 "--from-analysis", analysis, "--out", influenceOut])
        #expect(run.status == 0, "\(run.error)")
        let plan = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: influenceOut))) as? [String: Any])
        let layers = Set((plan["steps"] as? [[String: Any]])?.compactMap { $0["layer"] as? Int } ?? [])
        #expect(layers == Set(0..<30).subtracting([7, 20]))

        let ffnOut = path("ffn.json")
        let ffnRun = try StrataRun(["plan", "--model", model, "--method", "ffn-only", "--remove", "1",
                                    "--from-analysis", analysis, "--out", ffnOut])
        #expect(ffnRun.status == 0, "\(ffnRun.error)")
        let ffnPlan = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ffnOut))) as? [String: Any])
        let skipped = (ffnPlan["steps"] as? [[String: Any]])?.filter { $0["ffn"] as? Bool == false }.compactMap { $0["layer"] as? Int }
        #expect(skipped == [12])

        // The analysis lacks angular distances: say so.
        let angular = try StrataRun(["plan", "--model", model, "--method", "angular", "--remove", "2",
                                     "--from-analysis", analysis, "--out", path("angular.json")])
        #expect(angular.status != 0 && angular.error.contains("angular_distance"), "\(angular.error)")
    }
}

@Suite("strata quantize", .serialized)
struct QuantizeCommandTests {
    @Test("a layer-wise mix from an analyze report loads, and bad requests fail before any work")
    func quantizeCommand() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-quantize-cli-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try TinyModels.path(TinyModelSpec(format: .f32, seed: 7))
        let report = folder.appendingPathComponent("analysis.json").path
        let analyze = try StrataRun(["analyze", "--model", model, "--windows", "1", "--context", "32", "--json", report])
        try #require(analyze.status == 0, "\(analyze.error)")
        let out = folder.appendingPathComponent("mixed.gguf").path
        let run = try StrataRun(["quantize", "--model", model, "--target-bpw", "4.0", "--importance", report, "--by", "block-influence",
                                 "--out", out, "--json"])
        try #require(run.status == 0, "\(run.error)")
        let summary = try run.json()
        #expect((summary["layer_bits_per_weight"] as? Double ?? 99) <= 4.0)
        #expect((summary["layer_formats"] as? [String])?.count == 4)
        let generate = try StrataRun(["generate", "--model", out, "--prompt", "hi", "--max-tokens", "3", "--temperature", "0"])
        #expect(generate.status == 0, "\(generate.error)")
        let perTensor = folder.appendingPathComponent("per-tensor.gguf").path
        let measured = try StrataRun(["quantize", "--model", model, "--target-bpw", "4.0", "--importance", report, "--by", "block-influence",
                                      "--allocation", "tensors", "--importance-range", "16", "--out", perTensor, "--json"])
        try #require(measured.status == 0, "\(measured.error)")
        #expect((try measured.json()["layer_bits_per_weight"] as? Double ?? 99) <= 4.0)
        #expect(try StrataRun(["generate", "--model", perTensor, "--prompt", "hi", "--max-tokens", "3", "--temperature", "0"]).status == 0)
        // kind sensitivity: one pass per kind on the calibration text, the gains in the JSON and the metadata
        let text = folder.appendingPathComponent("calibration.txt").path
        try String(repeating: TinyVocabulary.corpus + "\n", count: 4).write(toFile: text, atomically: true, encoding: .utf8)
        let sensitive = folder.appendingPathComponent("sensitive.gguf").path
        let sensitivity = try StrataRun(["quantize", "--model", model, "--target-bpw", "4.0", "--importance", report,
                                         "--allocation", "tensors", "--calibration", text, "--context", "32", "--windows", "2",
                                         "--kind-sensitivity", "--out", sensitive, "--json"])
        try #require(sensitivity.status == 0, "\(sensitivity.error)")
        #expect(sensitivity.error.contains("kind sensitivity: 15 passes in") && sensitivity.error.contains("ffn_down Q3_K to Q2_K"),
                "\(sensitivity.error)")
        let sensitivitySummary = try sensitivity.json()
        #expect((sensitivitySummary["layer_bits_per_weight"] as? Double ?? 99) <= 4.0)
        let trials = try #require((sensitivitySummary["kind_sensitivity"] as? [String: Any])?["trials"] as? [[String: Any]],
                                  "\(sensitivitySummary)")
        #expect(trials.count == 14 && trials.allSatisfy { $0["loss_change"] is Double && $0["kind"] is String })
        let sensitiveFile = try GGUFFile.open(path: sensitive)
        #expect(try sensitiveFile.metadata.string("strata.quantize.method").contains("measured loss changes"))
        #expect(sensitiveFile.metadata["strata.quantize.kind_trials"] != nil
                && sensitiveFile.metadata["strata.quantize.kind_loss_changes"] != nil)
        let failures: [([String], String)] = [
            (["--target-bpw", "4", "--importance", report, "--allocation", "tensors", "--kind-sensitivity", "--force"],
             "--kind-sensitivity needs --allocation tensors and --calibration FILE"),
            (["--target-bpw", "4", "--importance", report, "--calibration", text, "--kind-sensitivity", "--force"],
             "--kind-sensitivity needs --allocation tensors and --calibration FILE"),
            (["--type", "Q4_K_M", "--kind-sensitivity", "--force"], "belong to --target-bpw"),
            (["--type", "Q4_K_M", "--allocation", "tensors", "--force"], "belong to --target-bpw"),
            (["--target-bpw", "4", "--importance", report, "--allocation", "tensors", "--spread", "2", "--force"],
             "--spread belongs to --allocation layers"),
            (["--target-bpw", "4", "--importance", report, "--allocation", "rows", "--force"], "'rows' is invalid for '--allocation"),
            (["--target-bpw", "4", "--importance", report, "--importance-range", "8", "--force"],
             "--importance-range belongs to --allocation tensors"),
            (["--target-bpw", "4", "--importance", report, "--allocation", "tensors", "--importance-range", "0.5", "--force"],
             "--importance-range is a ratio of at least 1, found 0.5"),
            (["--type", "Q9_K"], "unknown type 'Q9_K'"),
            (["--type", "Q4_K_M"], "exists; choose another --out or add --force"),
            (["--type", "Q4_K_M", "--target-bpw", "4"], "exclude each other"),
            (["--target-bpw", "4"], "needs --importance"),
            // --force: the budget is checked before the existing output would be replaced
            (["--target-bpw", "1", "--importance", report, "--force"], "below what the smallest type reaches"),
            (["--target-bpw", "40", "--importance", report, "--force"], "above the source's precision"),
        ]
        for (arguments, message) in failures {
            let failed = try StrataRun(["quantize", "--model", model, "--out", out] + arguments)
            #expect(failed.status != 0 && failed.error.contains(message), "\(arguments): \(failed.error)")
        }
        #expect(try GGUFFile.open(path: out).tensors.count > 0, "the refused runs left the earlier output alone")
        let itself = try StrataRun(["quantize", "--model", model, "--out", model, "--type", "Q8_0", "--force"])
        #expect(itself.status != 0 && itself.error.contains("is the model itself"))
    }
}

@Suite("strata plan --heal", .serialized)
struct PlanHealCommandTests {
    @Test("heals a built or an existing plan, writes its maps beside it, and refuses what it cannot heal")
    func healsPlans() throws {
        let model = try TestModels.require("smollm2-135m")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-heal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // 5 fit windows of 256 tokens: 1,280 rows for SmolLM2's 576 features (far fewer rows than
        // features overfit, and the held-out error then rises instead of falling)
        let small = ["--context", "256", "--heal-windows", "6", "--threads", "2"]
        let plain = try StrataRun(["plan", "--model", model, "--method", "unified", "--remove", "2", "--out", directory + "/plain.json"])
        #expect(plain.status == 0, "\(plain.error)")
        let built = try StrataRun(["plan", "--model", model, "--plan", directory + "/plain.json", "--heal", "linear",
                                   "--out", directory + "/healed.json", "--json"] + small)
        #expect(built.status == 0, "\(built.error)")
        let report = try #require(JSONSerialization.jsonObject(with: Data(built.output.utf8)) as? [[String: Any]])
        let cuts = try #require(report.first?["cuts"] as? [[String: Any]])
        #expect(cuts.count == 2, "unified removes two separate layers: \(cuts)")
        #expect(cuts.allSatisfy { ($0["held_out_error_ratio"] as? Double).map { $0 > 0 && $0 < 1 } == true }, "\(cuts)")
        #expect(cuts.allSatisfy { $0["site"] as? String == "stream" })
        #expect(FileManager.default.fileExists(atPath: directory + "/healed.maps.gguf"))
        let plan = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/healed.json"))) as? [String: Any])
        #expect(plan["map_file"] as? String == "healed.maps.gguf")
        #expect(plan["method"] as? String == "unified+heal")

        // the healed plan runs wherever a plan does
        let text = directory + "/text.txt"
        try String(repeating: "It is a truth universally acknowledged, that a single man in possession of a good fortune. ", count: 20)
            .write(toFile: text, atomically: true, encoding: .utf8)
        let perplexity = try StrataRun(["eval", "perplexity", "--model", model, "--plan", directory + "/healed.json",
                                        "--file", text, "--windows", "1", "--context", "128"])
        #expect(perplexity.status == 0, "\(perplexity.error)")

        // too few rows for the width: said plainly
        let thin = try StrataRun(["plan", "--model", model, "--plan", directory + "/plain.json", "--heal", "linear",
                                  "--context", "64", "--heal-windows", "3", "--out", directory + "/thin.json"])
        #expect(thin.status == 0 && thin.error.contains("fewer calibration rows"), "\(thin.error)")

        let refusals: [([String], String)] = [
            (["--plan", directory + "/plain.json", "--out", directory + "/x.json"], "add --heal linear"),
            (["--plan", directory + "/plain.json", "--heal", "linear", "--method", "unified", "--out", directory + "/x.json"], "one or the other"),
            (["--plan", directory + "/plain.json", "--heal", "linear", "--out", directory + "/healed.json"], "--force"),
            (["--method", "unified", "--remove", "1", "--heal", "linear", "--heal-windows", "1", "--out", directory + "/x.json"], "at least 2"),
            (["--plan", directory + "/healed.json", "--heal", "magic", "--out", directory + "/x.json"], "magic"),
            (["--method", "unified", "--remove", "1", "--heal", "linear", "--heal-ridge", "-1", "--out", directory + "/x.json"], "--heal-ridge"),
        ]
        for (arguments, message) in refusals {
            let run = try StrataRun(["plan", "--model", model] + arguments)
            #expect(run.status != 0 && run.error.contains(message), "\(arguments): \(run.error)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/x.json"))
    }
}
