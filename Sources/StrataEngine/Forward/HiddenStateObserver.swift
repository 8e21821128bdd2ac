/// Where in a layer the residual stream is observed.
public enum ResidualBoundary: Sendable {
    /// `h_l`, entering the layer.
    case layerInput
    /// After the attention sublayer's residual add.
    case afterAttention
    /// `h_{l+1}`, leaving the layer.
    case layerOutput
}

/// An input of the model's weight matrices: the rows every matrix reading it is multiplied
/// with. Quantization weighs each column's rounding error by how large this input is in that
/// column (llama.cpp's imatrix), so it needs these rather than the residual stream.
public enum MatrixInput: Sendable, CaseIterable {
    /// The attention norm's output, `[tokens × hidden]`: read by the query, key and value
    /// projections.
    case attention
    /// The heads' outputs side by side, `[tokens × heads·headDimensions]`: read by the attention
    /// output projection.
    case attentionOutput
    /// The feed-forward norm's output, `[tokens × hidden]`: read by the gate and up projections.
    case feedForward
    /// The gated activation `act(gate) · up`, `[tokens × feedForward]`: read by the down
    /// projection.
    case feedForwardDown
    /// The final norm's output, `[rows × hidden]` for the rows that get logits: read by the
    /// output matrix.
    case output
}

/// Sees the residual stream at each sublayer boundary during a forward pass, and optionally the
/// inputs of the weight matrices. Analysis tools (importance scores, logit lens, activation
/// statistics for quantization) use it instead of a second forward implementation; without an
/// observer the forward pass does no extra work.
public protocol HiddenStateObserver: AnyObject {
    /// `hidden` is `[tokens × hiddenSize]` for plan step `step` (running layer `layer`). Only the
    /// first `tokens × hiddenSize` values are live: the buffer may be larger.
    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int)

    /// `values` is `[tokens × columns]`, the input `input` of the matrix products of plan step
    /// `step` (running layer `layer`), as the products read it; for `.output`, `step` is the
    /// plan's step count and `layer` the model's layer count. Only the first `tokens × columns`
    /// values are live. The default does nothing.
    func observe(step: Int, layer: Int, input: MatrixInput, values: [Float], tokens: Int, columns: Int)
}

extension HiddenStateObserver {
    public func observe(step: Int, layer: Int, input: MatrixInput, values: [Float], tokens: Int, columns: Int) {}
}
