import StrataFormats
import StrataTokenizer

/// A loaded model: hyper-parameters, weights over the mapped file, tokenizer and chat template.
/// Immutable and shareable; running it needs a `Transformer` and a `KVCache`.
public struct LanguageModel: Sendable {
    public let file: GGUFFile
    public let config: ModelConfig
    /// The family: what `Transformer` asks about how the layers compute.
    public let architecture: any ModelArchitecture
    package let weights: ModelWeights
    public let tokenizer: Tokenizer
    /// The model's own `tokenizer.chat_template`, if it has one.
    public let chatTemplateSource: String?

    /// Opens and binds the GGUF model at `path`, of one of the families in `architectures`.
    /// Weights are memory-mapped, not copied.
    public init(path: String, architectures: ArchitectureRegistry = .standard) throws {
        try self.init(file: GGUFFile.open(path: path), architectures: architectures)
    }

    /// Binds the model in `file`, of one of the families in `architectures`.
    public init(file: GGUFFile, architectures: ArchitectureRegistry = .standard) throws {
        self.file = file
        architecture = try architectures.architecture(of: file)
        config = try ModelConfig(gguf: file, architecture: architecture)
        weights = try ModelWeights(gguf: file, config: config, architecture: architecture)
        let vocabulary = try Vocabulary(gguf: file)
        // a token without an embedding row would fail only when it first occurs, mid-generation
        guard vocabulary.tokens.count <= config.vocabularySize else {
            throw ModelLoadError.invalidHyperParameter(
                file: file.path, key: "tokenizer.ggml.tokens",
                reason: "\(vocabulary.tokens.count) tokens, but the embedding has rows for \(config.vocabularySize)")
        }
        tokenizer = try Tokenizer(vocabulary: vocabulary)
        chatTemplateSource = try file.metadata.optionalString("tokenizer.chat_template")
    }
}
