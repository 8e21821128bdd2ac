// What a user of the StrataEngine product can name with `import StrataEngine` alone.
//
// StrataTokenizer is re-exported whole: tokens, tokenizers, streaming text decoding and chat
// templates are what a user of the engine works with (`LanguageModel.tokenizer`,
// `promptTokens` returning `[TokenID]`, `GenerationEvent.token`), and all of its public API is
// meant for them.
//
// From the kernel and file-format modules only the types that appear in the engine's public
// signatures are made reachable, as type aliases: the rest of those modules (matrix kernels,
// quantized formats, the GGUF writer) is machinery whose API the engine does not promise.
// An alias names the same type, so code that also imports those modules sees no difference.
@_exported import StrataTokenizer
import StrataFormats
import StrataKernels

/// The threads a `Transformer` splits its work over (`Transformer.pool`,
/// `Transformer(model:pool:numerics:)`); one pool can serve several transformers.
public typealias WorkerPool = StrataKernels.WorkerPool

/// The width of the activations the matrix products take (`Transformer.activationPrecision`).
public typealias ActivationPrecision = StrataKernels.ActivationPrecision

/// How rotary position embeddings pair dimensions (`ModelConfig.rotaryStyle`).
public typealias RotaryStyle = StrataKernels.RotaryStyle

/// A mapped GGUF file (`LanguageModel.file`, `LanguageModel(file:)`).
public typealias GGUFFile = StrataFormats.GGUFFile

/// Why a GGUF file could not be read: what `LanguageModel(path:)` throws for a malformed file.
public typealias FormatError = StrataFormats.FormatError
