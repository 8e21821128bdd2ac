extension LanguageModel {
    /// The file's tensors that multiply `input` in layer `layer` (ignored for `.output`): what a
    /// quantizer weighing errors by that input's statistics applies them to. Fused files name
    /// one tensor where others name several (Phi-3's `attn_qkv`, and its `ffn_up` holding the
    /// gate rows too); a tied output matrix is the token embedding, which is quantized as a
    /// lookup table, so `.output` then names nothing, as llama.cpp's imatrix does.
    public func matrixNames(reading input: MatrixInput, layer: Int) -> [String] {
        let names = architecture.tensorNames
        let fused = architecture.fusesProjections
        switch input {
        case .attention:
            return fused ? [names.layer(layer, names.fusedQueryKeyValue)]
                : [names.query, names.key, names.value].map { names.layer(layer, $0) }
        case .attentionOutput: return [names.layer(layer, names.attentionOutput)]
        case .feedForward:
            return fused ? [names.layer(layer, names.up)] : [names.gate, names.up].map { names.layer(layer, $0) }
        case .feedForwardDown: return [names.layer(layer, names.down)]
        case .output: return config.tiedOutput ? [] : [names.output]
        }
    }
}
