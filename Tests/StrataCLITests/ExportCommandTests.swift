import Foundation
import StrataFormats
import StrataTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `strata export` end to end: its refusals, and its files read by independent engines — the
/// `gguf` package checks every tensor against the source, and transformers' GGUF loader
/// (float32) decodes an export with whole layers removed greedily to the tokens Strata's exact
/// path gives running the plan on the source model. The Python side is
/// `Tests/Python/export_reference.py`, run with the reference environment of
/// `scripts/fetch-python.sh`.
@Suite("strata export", .serialized)
struct ExportCommandTests {
    static let referenceScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Python/export_reference.py").path

    static func folder() throws -> String {
        let path = NSTemporaryDirectory() + "strata-export-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes a plan file of `steps` (layer, attention, ffn) for a model of `layerCount` layers.
    static func writePlan(_ path: String, layerCount: Int, steps: [(Int, Bool, Bool)], method: String = "manual") throws {
        let object: [String: Any] = [
            "layer_count": layerCount, "method": method,
            "steps": steps.map { ["layer": $0.0, "attention": $0.1, "ffn": $0.2] },
        ]
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    /// Runs the reference script; its one JSON object, or a failure with its stderr.
    static func reference(_ arguments: [String], timeout: Double) throws -> [String: Any] {
        let python = try TestPython.requireReference()
        let run = try ChildProcess(python, [referenceScript] + arguments)
        let status = run.wait(timeout: timeout)
        let output = run.output.text.split(separator: "\n").last.map(String.init) ?? ""
        let failure = "export_reference.py \(arguments.first ?? "") exited \(status.map(String.init) ?? "late, killed"): "
            + run.error.text.suffix(3000)
        return try #require(try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(failure)")
    }

    /// gguf's reader must find every tensor where the plan puts it, with its source's bytes.
    static func checkWithGGUF(_ exported: String, source: String, blocks: Int) throws {
        let read = try reference(["read", exported, "--source", source], timeout: 120)
        #expect(read["ok"] as? Bool == true, "gguf: \(read["problems"] ?? "")")
        #expect(read["block_count"] as? Int == blocks)
    }

    @Test func refusalsComeBeforeAnyWork() throws {
        let model = try TinyModels.path(.llama)
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let plan = folder + "/plan.json"
        try Self.writePlan(plan, layerCount: 4, steps: [(0, true, true), (2, true, false), (3, true, true)])
        let out = folder + "/out.gguf"
        func refused(_ arguments: [String], saying expected: String) throws {
            let run = try StrataRun(["export"] + arguments)
            #expect(run.status != 0, "exit \(run.status) for \(arguments)")
            #expect(run.error.contains(expected), "stderr for \(arguments): \(run.error)")
            #expect(!run.error.contains("Fatal error") && run.output.isEmpty)
        }

        let otherPlan = folder + "/other.json"
        try Self.writePlan(otherPlan, layerCount: 30, steps: [(0, true, true)])
        try refused(["--model", model, "--plan", otherPlan, "--out", out],
                    saying: "the plan is for a model with 30 layers, this model has 4")
        let notGGUF = folder + "/notes.gguf"
        try Data("just some text, not a model".utf8).write(to: URL(fileURLWithPath: notGGUF))
        try refused(["--model", notGGUF, "--plan", plan, "--out", out], saying: "not a GGUF file")
        try refused(["--model", model, "--plan", plan, "--out", model, "--force"], saying: "is the source model")
        let unwritable = getuid() == 0 ? "/sys/strata-export.gguf" : "/strata-export-\(UUID().uuidString).gguf"
        try refused(["--model", model, "--plan", plan, "--out", unwritable], saying: "cannot create files in")
        try refused(["--model", model, "--plan", plan, "--out", folder + "/missing/out.gguf"], saying: "does not exist")
        try refused(["--model", model, "--plan", plan, "--out", out, "--type", "q4_9"], saying: "unknown type 'q4_9'")
        try refused(["--model", model, "--out", out], saying: "give --plan")
        #expect(!FileManager.default.fileExists(atPath: out))

        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out))
        try refused(["--model", model, "--plan", plan, "--out", out], saying: "exists")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep me")
        let forced = try StrataRun(["export", "--model", model, "--plan", plan, "--out", out, "--force"])
        #expect(forced.status == 0, "\(forced.error)")
        #expect(forced.output.contains("wrote \(out): 3 blocks from 4 layers"))
        #expect(forced.output.contains("zeroed sublayers: ffn of block 1 (layer 2)"))
        #expect(forced.error.contains("save no compute"))
    }

    /// Repetition, reordering, zeroed sublayers and a step that runs nothing, on a tiny model:
    /// the summary says what was written, and gguf reads every tensor back.
    @Test(.timeLimit(.minutes(2)))
    func tinyExportReadsBackWithGGUF() throws {
        let model = try TinyModels.path(.qwen2)
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let plan = folder + "/plan.json"
        try Self.writePlan(plan, layerCount: 4, steps: [
            (3, true, true), (0, true, false), (2, true, true), (1, false, false), (2, false, true), (0, true, true),
        ])
        let out = folder + "/out.gguf"
        let run = try StrataRun(["export", "--model", model, "--plan", plan, "--out", out, "--json"])
        #expect(run.status == 0, "\(run.error)")
        let summary = try run.json()
        #expect(summary["layers"] as? [Int] == [3, 0, 2, 2, 0])
        #expect(summary["dropped_steps"] as? [Int] == [3])
        #expect(summary["output"] as? String == out)
        let zeroed = try #require(summary["zeroed_sublayers"] as? [[String: Any]])
        #expect(zeroed.map { $0["tensors"] as? [String] ?? [] } == [["blk.1.ffn_down.weight"], ["blk.3.attn_output.weight"]])
        let size = try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int
        #expect(summary["bytes"] as? Int == size)
        try Self.checkWithGGUF(out, source: model, blocks: 5)
    }

    /// The registered models, each with whole layers removed (Gemma 3 a whole period of six, so
    /// transformers, which places windows by position and ignores the pattern key, runs every
    /// layer with its own window kind), and a short prompt.
    static let references: [(model: String, removed: ClosedRange<Int>, layers: Int, prompt: String)] = [
        ("smollm2-135m", 20...25, 30, "The capital of France is"),
        ("qwen2.5-coder-0.5b", 14...17, 24, "def fibonacci(n):"),
        ("gemma3-270m", 6...11, 18, "The capital of France is"),
        ("qwen2.5-coder-1.5b", 20...23, 28, "def fibonacci(n):"),
    ]

    /// SmolLM2 in the default tier (a CI run stays within 15 minutes); Gemma 3 and both Qwen
    /// models too in the full tier (`STRATA_TEST_TIER=full`; transformers loads Qwen-1.5B as
    /// 6 GB of float32, about a minute).
    @Test(.timeLimit(.minutes(5)), arguments: TestTier.size(reduced: [0], full: Array(references.indices)))
    func transformersDecodesTheExportLikeStrataRunsThePlan(index: Int) throws {
        let (name, removed, layerCount, prompt) = Self.references[index]
        let model = try TestModels.require(name)
        _ = try TestPython.requireReference()
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let plan = folder + "/plan.json"
        try Self.writePlan(plan, layerCount: layerCount, steps: (0..<layerCount).filter { !removed.contains($0) }.map { ($0, true, true) },
                           method: "block-influence")
        let out = folder + "/\(name)-exported.gguf"
        let export = try StrataRun(["export", "--model", model, "--plan", plan, "--out", out, "--json"])
        try #require(export.status == 0, "\(export.error)")
        #expect(try export.json()["warnings"] as? [String] == [])
        let blocks = layerCount - removed.count

        let count = 8
        let strata = try StrataRun(["generate", "--model", model, "--plan", plan, "--exact", "--temperature", "0",
                                    "--max-tokens", String(count), "--prompt", prompt, "--json"])
        try #require(strata.status == 0, "\(strata.error)")
        let generated = try strata.json()
        let promptTokens = try #require(generated["prompt_tokens"] as? [Int])
        let expected = try #require(generated["tokens"] as? [Int])

        let started = Date()
        try Self.checkWithGGUF(out, source: model, blocks: blocks)
        let readSeconds = Date().timeIntervalSince(started)
        let greedy = try Self.reference(["greedy", out, "--tokens", promptTokens.map(String.init).joined(separator: ","),
                                         "--count", String(count)], timeout: 270)
        let tokens = try #require(greedy["tokens"] as? [Int])
        #expect(greedy["layers"] as? Int == blocks)
        // Strata stops at an end-of-generation token; transformers here does not
        #expect(Array(tokens.prefix(expected.count)) == expected,
                "\(name): transformers \(tokens) (top-2 margins \(greedy["margins"] ?? "")), Strata \(expected)")
        print("export reference \(name): gguf read \(String(format: "%.1f", readSeconds)) s, transformers "
            + "\(greedy["seconds"] ?? "?") s (load \(greedy["load_seconds"] ?? "?") s)")
    }
}

extension ExportCommandTests {
    /// `export --type` is export, then quantize: the file equals quantizing the plain export.
    @Test func exportWithTypeEqualsExportThenQuantize() throws {
        let model = try TinyModels.path(TinyModelSpec(format: .f32, seed: 7))
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let plan = folder + "/plan.json"
        try Self.writePlan(plan, layerCount: 4, steps: [(0, true, true), (2, true, false), (1, true, true), (3, true, true)])
        let direct = folder + "/direct.gguf", plain = folder + "/plain.gguf", twoStep = folder + "/two-step.gguf"
        let exportTyped = try StrataRun(["export", "--model", model, "--plan", plan, "--type", "Q4_K_M", "--out", direct])
        try #require(exportTyped.status == 0, "\(exportTyped.error)")
        let exportPlain = try StrataRun(["export", "--model", model, "--plan", plan, "--out", plain])
        try #require(exportPlain.status == 0, "\(exportPlain.error)")
        let quantize = try StrataRun(["quantize", "--model", plain, "--type", "Q4_K_M", "--out", twoStep])
        try #require(quantize.status == 0, "\(quantize.error)")
        let first = try GGUFFile.open(path: direct), second = try GGUFFile.open(path: twoStep)
        #expect(first.tensors.map(\.name) == second.tensors.map(\.name))
        #expect(first.tensors.contains { $0.format == .q4_K })
        for (a, b) in zip(first.tensors, second.tensors) {
            #expect(a.format == b.format && first.data(for: a).bytes(at: 0, count: a.byteCount) == second.data(for: b).bytes(at: 0, count: b.byteCount),
                    "\(a.name)")
        }
        #expect(try first.metadata.string("strata.export.method") == "manual")
        #expect(!FileManager.default.fileExists(atPath: direct + ".export-tmp"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        let unknown = try StrataRun(["export", "--model", model, "--plan", plan, "--type", "Q7_K", "--out", folder + "/x.gguf"])
        #expect(unknown.status != 0 && unknown.error.contains("unknown type 'Q7_K'"))
    }
}
