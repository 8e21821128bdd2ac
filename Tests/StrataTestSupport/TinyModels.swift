import Foundation
import StrataEngine
import StrataFormats
import StrataKernels

/// What a generated tiny model looks like: one per architecture and weight format the engine
/// reads, small enough that a forward pass takes microseconds in a release build.
///
/// The weights are seeded random blocks (codes and scales drawn directly in the format's
/// layout, so every format's kernels see realistic spreads of codes without a quantizer), the
/// vocabulary is a real byte-level BPE learned from `TinyVocabulary.corpus`, and the file
/// carries a ChatML template, so every engine path from tokenizer to sampling runs on it.
public struct TinyModelSpec: Sendable, Hashable, CustomStringConvertible {
    /// `general.architecture`: "llama" (tied output, adjacent-pair RoPE) or "qwen2" (q/k/v
    /// biases, split-half RoPE, a separate output matrix).
    public var architecture: String
    /// The format of every matrix, the token embedding included.
    public var format: QuantFormat
    public var layers: Int
    /// Hidden size; a multiple of 256 so the K-quant formats (256-element blocks) fit.
    public var hidden: Int
    public var feedForward: Int
    public var heads: Int
    public var kvHeads: Int
    public var contextLength: Int
    /// Seeds the weights; the same spec always gives the same bytes.
    public var seed: UInt64

    public init(
        architecture: String = "llama", format: QuantFormat = .q8_0, layers: Int = 4, hidden: Int = 256,
        feedForward: Int = 512, heads: Int = 4, kvHeads: Int = 2, contextLength: Int = 512, seed: UInt64 = 1
    ) {
        self.architecture = architecture
        self.format = format
        self.layers = layers
        self.hidden = hidden
        self.feedForward = feedForward
        self.heads = heads
        self.kvHeads = kvHeads
        self.contextLength = contextLength
        self.seed = seed
    }

    /// The default llama-style model (Q8_0).
    public static let llama = TinyModelSpec()
    /// The default qwen2-style model (Q8_0).
    public static let qwen2 = TinyModelSpec(architecture: "qwen2", seed: 2)

    /// Every matrix format the engine computes with.
    public static let formats: [QuantFormat] = QuantFormat.allCases.filter(\.isComputable)

    /// One spec per architecture and weight format.
    public static var all: [TinyModelSpec] {
        ["llama", "qwen2"].flatMap { architecture in
            formats.map { TinyModelSpec(architecture: architecture, format: $0, seed: architecture == "llama" ? 1 : 2) }
        }
    }

    public var description: String { "\(architecture)-\(format)" }

    var fileName: String {
        "tiny-\(architecture)-\(format)-l\(layers)-h\(hidden)-f\(feedForward)-\(heads)x\(kvHeads)-c\(contextLength)-s\(seed).gguf"
    }
}

/// Generated tiny models, written once per test process into a temporary folder.
public enum TinyModels {
    nonisolated(unsafe) private static var paths: [TinyModelSpec: String] = [:]
    nonisolated(unsafe) private static var models: [TinyModelSpec: LanguageModel] = [:]
    private static let lock = NSLock()

    /// The folder the files go to (removed by the system's temporary-file cleanup).
    public static let directory: String = {
        let path = NSTemporaryDirectory() + "strata-tiny-models-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// The path of the GGUF file for `spec`, written on first use.
    public static func path(_ spec: TinyModelSpec = .llama) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let path = paths[spec] { return path }
        let path = directory + "/" + spec.fileName
        if !FileManager.default.fileExists(atPath: path) {
            try writer(spec).write(to: path, overwrite: true)
        }
        paths[spec] = path
        return path
    }

    /// The loaded model for `spec`.
    public static func model(_ spec: TinyModelSpec = .llama) throws -> LanguageModel {
        let path = try path(spec)
        lock.lock()
        defer { lock.unlock() }
        if let model = models[spec] { return model }
        let model = try LanguageModel(path: path)
        models[spec] = model
        return model
    }

    /// A GGUF writer holding the whole model for `spec`; tests that need a variant (a renamed
    /// tensor, an extra key) change it before writing.
    public static func writer(_ spec: TinyModelSpec) throws -> GGUFWriter {
        var random = SeededGenerator(seed: spec.seed &* 0x5851_F42D_4C95_7F2D &+ UInt64(spec.format.rawValue))
        var writer = GGUFWriter()
        let prefix = spec.architecture
        let headSize = spec.hidden / spec.heads
        let vocabulary = TinyVocabulary.shared
        writer.set("general.architecture", .string(prefix))
        writer.set("general.name", .string("tiny \(spec)"))
        writer.set("\(prefix).block_count", .uint32(UInt32(spec.layers)))
        writer.set("\(prefix).context_length", .uint32(UInt32(spec.contextLength)))
        writer.set("\(prefix).embedding_length", .uint32(UInt32(spec.hidden)))
        writer.set("\(prefix).feed_forward_length", .uint32(UInt32(spec.feedForward)))
        writer.set("\(prefix).attention.head_count", .uint32(UInt32(spec.heads)))
        writer.set("\(prefix).attention.head_count_kv", .uint32(UInt32(spec.kvHeads)))
        writer.set("\(prefix).rope.freq_base", .float32(prefix == "qwen2" ? 1_000_000 : 10_000))
        writer.set("\(prefix).attention.layer_norm_rms_epsilon", .float32(1e-5))
        vocabulary.addMetadata(to: &writer, preTokenizer: prefix == "qwen2" ? "qwen2" : "smollm")

        let vocabularySize = vocabulary.tokens.count
        func matrix(_ name: String, rows: Int, columns: Int, scale: Float) throws {
            let bytes = TinyWeights.matrix(format: spec.format, rows: rows, columns: columns, scale: scale, random: &random)
            try writer.addTensor(name: name, shape: [columns, rows], format: spec.format, data: bytes)
        }
        func vector(_ name: String, count: Int, around center: Float, spread: Float) throws {
            let values = (0..<count).map { _ in center + spread * Float.random(in: -1...1, using: &random) }
            try writer.addTensor(name: name, shape: [count], format: .f32, data: TinyWeights.bytes(of: values))
        }
        // Projections scaled by 1/sqrt(columns) keep every sublayer's output near unit size, and
        // output rows of this size give logits a spread of about 2 (as real models have), so
        // softmaxes are neither flat nor one-hot and sampling with a seed has choices to make.
        let inverseRoot = { (columns: Int) in 1 / Float(columns).squareRoot() }
        try matrix("token_embd.weight", rows: vocabularySize, columns: spec.hidden, scale: 3.5 * inverseRoot(spec.hidden))
        try vector("output_norm.weight", count: spec.hidden, around: 1, spread: 0.2)
        if prefix == "qwen2" {
            try matrix("output.weight", rows: vocabularySize, columns: spec.hidden, scale: 3.5 * inverseRoot(spec.hidden))
        }
        for layer in 0..<spec.layers {
            let name = { (suffix: String) in "blk.\(layer).\(suffix)" }
            try vector(name("attn_norm.weight"), count: spec.hidden, around: 1, spread: 0.2)
            try matrix(name("attn_q.weight"), rows: spec.heads * headSize, columns: spec.hidden, scale: 2 * inverseRoot(spec.hidden))
            try matrix(name("attn_k.weight"), rows: spec.kvHeads * headSize, columns: spec.hidden, scale: 2 * inverseRoot(spec.hidden))
            try matrix(name("attn_v.weight"), rows: spec.kvHeads * headSize, columns: spec.hidden, scale: inverseRoot(spec.hidden))
            if prefix == "qwen2" {
                try vector(name("attn_q.bias"), count: spec.heads * headSize, around: 0, spread: 0.1)
                try vector(name("attn_k.bias"), count: spec.kvHeads * headSize, around: 0, spread: 0.1)
                try vector(name("attn_v.bias"), count: spec.kvHeads * headSize, around: 0, spread: 0.1)
            }
            try matrix(name("attn_output.weight"), rows: spec.hidden, columns: spec.heads * headSize,
                       scale: inverseRoot(spec.hidden))
            try vector(name("ffn_norm.weight"), count: spec.hidden, around: 1, spread: 0.2)
            try matrix(name("ffn_gate.weight"), rows: spec.feedForward, columns: spec.hidden, scale: inverseRoot(spec.hidden))
            try matrix(name("ffn_up.weight"), rows: spec.feedForward, columns: spec.hidden, scale: inverseRoot(spec.hidden))
            try matrix(name("ffn_down.weight"), rows: spec.hidden, columns: spec.feedForward, scale: inverseRoot(spec.feedForward))
        }
        return writer
    }
}

/// Random blocks in each format's own layout (llama.cpp's block structures).
enum TinyWeights {
    /// `rows × columns` values of about ±`scale`, encoded in `format`.
    static func matrix(format: QuantFormat, rows: Int, columns: Int, scale: Float, random: inout SeededGenerator) -> [UInt8] {
        let blocks = rows * columns / format.blockSize
        var bytes: [UInt8] = []
        bytes.reserveCapacity(blocks * format.bytesPerBlock)
        func half(_ value: Float) { append16(Float16(value).bitPattern) }
        func append16(_ bits: UInt16) { bytes.append(UInt8(bits & 0xFF)); bytes.append(UInt8(bits >> 8)) }
        func randomBytes(_ count: Int) { for _ in 0..<count { bytes.append(UInt8.random(in: 0...255, using: &random)) } }
        // A block scale varying by up to 2x around its nominal value, as real blocks do.
        func jitter(_ value: Float) -> Float { value * Float.random(in: 0.5...1.5, using: &random) }
        switch format {
        case .f32:
            for _ in 0..<(rows * columns) { bytes += bytes32(scale * Float.random(in: -1...1, using: &random)) }
        case .f16:
            for _ in 0..<(rows * columns) { half(scale * Float.random(in: -1...1, using: &random)) }
        case .bf16:
            for _ in 0..<(rows * columns) {
                append16(UInt16((scale * Float.random(in: -1...1, using: &random)).bitPattern >> 16))
            }
        case .q4_0:
            // value = d * (q - 8), q in 0...15
            for _ in 0..<blocks { half(jitter(scale / 8)); randomBytes(16) }
        case .q4_1:
            // value = d * q + m
            for _ in 0..<blocks { half(jitter(scale / 8)); half(-jitter(scale)); randomBytes(16) }
        case .q5_0:
            // value = d * (q - 16), q in 0...31
            for _ in 0..<blocks { half(jitter(scale / 16)); randomBytes(4 + 16) }
        case .q5_1:
            for _ in 0..<blocks { half(jitter(scale / 16)); half(-jitter(scale)); randomBytes(4 + 16) }
        case .q8_0:
            for _ in 0..<blocks { half(jitter(scale / 127)); randomBytes(32) }
        case .q4_K:
            // value = d * sc * q - dmin * m with 6-bit sc and m, q in 0...15
            for _ in 0..<blocks { half(jitter(scale / (32 * 8))); half(jitter(scale / 32)); randomBytes(12 + 128) }
        case .q5_K:
            for _ in 0..<blocks { half(jitter(scale / (32 * 16))); half(jitter(scale / 32)); randomBytes(12 + 32 + 128) }
        case .q2_K:
            // value = d * sc * q - dmin * m with 4-bit sc and m, q in 0...3; d and dmin come last
            for _ in 0..<blocks { randomBytes(16 + 64); half(jitter(scale / 12)); half(jitter(scale / 8)) }
        case .q3_K:
            // value = d * (sc - 32) * q with 6-bit sc, q in -4...3; d comes last
            for _ in 0..<blocks { randomBytes(32 + 64 + 12); half(jitter(scale / 48)) }
        case .q6_K:
            // value = d * sc * (q - 32) with signed 8-bit sc; d comes last
            for _ in 0..<blocks { randomBytes(128 + 64 + 16); half(jitter(scale / (64 * 32))) }
        default:
            preconditionFailure("no tiny-model encoder for \(format)")
        }
        return bytes
    }

    static func bytes32(_ value: Float) -> [UInt8] {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
    }

    static func bytes(of values: [Float]) -> [UInt8] { values.flatMap(bytes32) }
}
