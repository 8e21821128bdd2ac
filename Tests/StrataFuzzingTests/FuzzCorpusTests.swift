import Foundation
import StrataEngine
import StrataFormats
import StrataFuzzing
import StrataKernels
import StrataTestSupport
import Testing

/// The committed seed corpora (and every crasher a fuzzer found, kept beside them) replayed
/// through the entry points the libFuzzer executables drive, so the harnesses cannot rot and
/// every fixed crash stays fixed.
@Suite struct FuzzCorpusTests {
    static let fuzzRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ target: FuzzTarget) throws -> [URL] {
        let folder = fuzzRoot.appendingPathComponent("Corpus/\(target)")
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// The vocabularies `scripts/fuzz.sh` gives the tokenizer target: SmolLM2's byte-level BPE
    /// and llama.cpp's Llama 2 SentencePiece test vocabulary.
    static func harness(_ target: FuzzTarget) throws -> FuzzHarness {
        guard target.needsVocabulary else { return try FuzzHarness(target: target) }
        let sentencePiece = fuzzRoot.deletingLastPathComponent()
            .appendingPathComponent("Tests/StrataTokenizerTests/Fixtures/llama-cpp-vocab/ggml-vocab-llama-spm.gguf")
        return try FuzzHarness(target: target, vocabularyModels: [TestModels.require("smollm2-135m"), sentencePiece.path])
    }

    @Test("every committed input replays with every promise kept", arguments: FuzzTarget.allCases)
    func replay(target: FuzzTarget) throws {
        let files = try Self.inputs(target)
        #expect(files.count >= 4, "the \(target) corpus has \(files.count) inputs")
        let harness = try Self.harness(target)
        for file in files {
            let problems = harness.run(Array(try Data(contentsOf: file)))
            #expect(problems.isEmpty, "\(target)/\(file.lastPathComponent): \(problems)")
        }
    }

    /// Seeds that only reach error paths would leave the fuzzer outside the code that matters.
    @Test func modelSeedsLoad() throws {
        let models = try Self.inputs(.gguf).filter { $0.lastPathComponent.hasPrefix("model-") }
        #expect(models.count >= 2)
        for file in models {
            let bytes = Array(try Data(contentsOf: file))
            let model = try LanguageModel(file: GGUFFile(bytes: ByteView(ByteStorage.copying(bytes)), path: file.path))
            #expect(model.config.layerCount >= 1)
            #expect(model.chatTemplateSource != nil)
        }
    }

    @Test func planAndRequestSeedsParse() throws {
        for file in try Self.inputs(.plan) where file.lastPathComponent.hasPrefix("ok-") {
            let plan = try LayerPlan.decode(try Data(contentsOf: file), path: file.path)
            try plan.validate(layerCount: plan.layerCount)
        }
        let requests = try Self.inputs(.request).filter { $0.lastPathComponent.hasPrefix("ok-") }
        #expect(requests.count >= 4)
        for file in requests {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.contains("\"fuzz-model\""), "\(file.lastPathComponent) names the model the harness serves")
        }
    }

    /// The dictionaries are parsed by libFuzzer only when fuzzing; a malformed line would stop
    /// `scripts/fuzz.sh` at start-up, so check their shape here.
    @Test func dictionariesAreWellFormed() throws {
        let folder = Self.fuzzRoot.appendingPathComponent("Dictionaries")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let lines = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
                .split(separator: "\n").filter { !$0.hasPrefix("#") }
            #expect(!lines.isEmpty)
            for line in lines {
                #expect(line.hasPrefix("\"") && line.hasSuffix("\"") && line.count >= 3, "\(name): \(line)")
            }
        }
    }

    /// Writes the GGUF seeds (`STRATA_WRITE_FUZZ_SEEDS=1 swift test --filter writeModelSeeds`):
    /// the smallest tiny models of both families and a file with no tensors.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["STRATA_WRITE_FUZZ_SEEDS"] == "1"))
    func writeModelSeeds() throws {
        let folder = Self.fuzzRoot.appendingPathComponent("Corpus/gguf")
        for architecture in ["llama", "qwen2"] {
            let spec = TinyModelSpec(
                architecture: architecture, format: .q8_0, layers: 1, hidden: 32, feedForward: 64, heads: 2, kvHeads: 1,
                contextLength: 64, seed: 7)
            let bytes = try TinyModels.writer(spec).bytes()
            try Data(bytes).write(to: folder.appendingPathComponent("model-\(architecture)-q8_0.gguf"))
        }
        var writer = GGUFWriter(alignment: 64)
        writer.set("general.architecture", .string("llama"))
        writer.set("llama.block_count", .uint32(1))
        writer.set("llama.rope.freq_base", .float32(10_000))
        writer.set("tokenizer.ggml.tokens", .array([.string("a"), .string("b")]))
        writer.set("tokenizer.ggml.add_bos_token", .bool(true))
        writer.set("fuzz.values", .array([.float64(1.5), .float64(-0.0)]))
        writer.set("fuzz.wide", .uint64(1 << 40))
        writer.set("fuzz.small", .array([.int8(-3), .int8(4)]))
        writer.set("fuzz.short", .uint16(7))
        try writer.addTensor(name: "output_norm.weight", shape: [4], format: .f32, data: [UInt8](repeating: 0, count: 16))
        try Data(try writer.bytes()).write(to: folder.appendingPathComponent("header-only.gguf"))
    }
}
