import StrataFormats
import StrataKernels
import StrataTestSupport
import Testing

/// Reads the installed models and compares against what Python's `gguf.GGUFReader` reports
/// for the same files (values recorded by hand, see each test).
@Suite struct RealModelTests {
    // python3 -c "import gguf; r = gguf.GGUFReader(path); ..." on smollm2-135m.gguf
    @Test func smolLM2DirectoryMatchesPythonReader() throws {
        let file = try GGUFFile.open(path: try TestModels.require("smollm2-135m"))
        #expect(file.version == 3)
        #expect(file.tensors.count == 272)
        #expect(file.metadata.keys.count == 33)
        #expect(file.alignment == 32)
        #expect(file.dataOffset == 1_785_664)
        #expect(file.fileSize == 98_362_432)

        let metadata = file.metadata
        #expect(try metadata.string("general.architecture") == "llama")
        #expect(try metadata.integer("llama.block_count") == 30)
        #expect(try metadata.integer("llama.embedding_length") == 576)
        #expect(try metadata.float("llama.rope.freq_base") == 100_000)
        #expect(try metadata.float("llama.attention.layer_norm_rms_epsilon") == 1e-5)
        #expect(try metadata.string("tokenizer.ggml.pre") == "smollm")
        #expect(try metadata.strings("tokenizer.ggml.tokens").count == 49_152)
        #expect(try metadata.optionalInteger("general.alignment") == nil)

        let expected: [(String, [Int], QuantFormat, Int, Int)] = [
            ("token_embd.weight", [576, 49_152], .q8_0, 1_785_664, 30_081_024),
            ("blk.0.attn_norm.weight", [576], .f32, 31_866_688, 2_304),
            ("blk.0.ffn_down.weight", [1_536, 576], .q4_1, 31_868_992, 552_960),
            ("blk.9.attn_v.weight", [576, 192], .q4_1, 98_291_008, 69_120),
            ("output_norm.weight", [576], .f32, 98_360_128, 2_304),
        ]
        for (name, shape, format, absoluteOffset, byteCount) in expected {
            let tensor = try #require(file.tensor(named: name), "tensor \(name)")
            #expect(tensor.shape == shape, "\(name)")
            #expect(tensor.format == format, "\(name)")
            #expect(file.dataOffset + tensor.offset == absoluteOffset, "\(name)")
            #expect(tensor.byteCount == byteCount, "\(name)")
            #expect(file.data(for: tensor).count == byteCount)
        }
        #expect(file.tensors.first?.name == "token_embd.weight")
        #expect(file.tensors.last?.name == "output_norm.weight")
    }
}

/// One row of what `gguf.GGUFReader` reports for a Qwen2 model.
struct QwenExpectation: Sendable, CustomTestStringConvertible {
    var model: String
    var tensorCount: Int
    var dataOffset: Int
    var blockCount: Int
    var embeddingLength: Int
    var output: (format: QuantFormat, offset: Int, bytes: Int)
    var embedding: (format: QuantFormat, offset: Int, bytes: Int)
    var testDescription: String { model }
}

extension RealModelTests {
    /// The 1.5B model is not among the models the README's test command installs, so it is
    /// checked in the full tier (which needs `scripts/fetch-models.sh qwen2.5-coder-1.5b`).
    static let qwenModels = [
        QwenExpectation(model: "qwen2.5-coder-0.5b", tensorCount: 291, dataOffset: 5_947_776, blockCount: 24,
                        embeddingLength: 896, output: (.q8_0, 5_947_776, 144_643_072),
                        embedding: (.q5_0, 150_590_848, 93_592_576)),
    ] + (TestTier.isFull ? [
        QwenExpectation(model: "qwen2.5-coder-1.5b", tensorCount: 339, dataOffset: 5_950_528, blockCount: 28,
                        embeddingLength: 1_536, output: (.q6_K, 5_950_528, 191_439_360),
                        embedding: (.q4_K, 197_389_888, 131_272_704)),
    ] : [])

    @Test(arguments: qwenModels)
    func qwenDirectoryMatchesPythonReader(_ expected: QwenExpectation) throws {
        let path = try TestModels.require(expected.model)
        let started = ContinuousClock.now
        let file = try GGUFFile.open(path: path)
        let elapsed = ContinuousClock.now - started
        // The 151,936-entry vocabulary and 151,387 merges dominate; well under a second even
        // in a debug build, and no tensor bytes are touched.
        #expect(elapsed < .seconds(1), "open took \(elapsed)")

        #expect(file.tensors.count == expected.tensorCount)
        #expect(file.metadata.keys.count == 26)
        #expect(file.dataOffset == expected.dataOffset)
        let metadata = file.metadata
        #expect(try metadata.string("general.architecture") == "qwen2")
        #expect(try metadata.integer("qwen2.block_count") == expected.blockCount)
        #expect(try metadata.integer("qwen2.embedding_length") == expected.embeddingLength)
        #expect(try metadata.float("qwen2.rope.freq_base") == 1_000_000)
        #expect(try metadata.string("tokenizer.ggml.pre") == "qwen2")
        let tokens = try metadata.strings("tokenizer.ggml.tokens")
        let merges = try metadata.strings("tokenizer.ggml.merges")
        #expect(tokens.count == 151_936)
        #expect(merges.count == 151_387)
        #expect(merges.first == "Ġ Ġ")

        for (name, facts) in [("output.weight", expected.output), ("token_embd.weight", expected.embedding)] {
            let tensor = try #require(file.tensor(named: name), "tensor \(name)")
            #expect(tensor.shape == [expected.embeddingLength, 151_936], "\(name)")
            #expect(tensor.format == facts.format, "\(name)")
            #expect(file.dataOffset + tensor.offset == facts.offset, "\(name)")
            #expect(tensor.byteCount == facts.bytes, "\(name)")
        }
        #expect(file.tensors.first?.name == "output.weight")
        #expect(file.tensors.last?.name == "output_norm.weight")
    }
}
