import StrataKernels

/// Llama and its descendants (SmolLM2): no biases, tied or separate output, and q/k rows that
/// llama.cpp's converter permuted so RoPE rotates adjacent pairs.
public struct LlamaArchitecture: ModelArchitecture {
    public init() {}
    public var name: String { "llama" }
    public var rotaryStyle: RotaryStyle { .adjacentPairs }
}
