/// Where in a layer the residual stream is observed.
public enum ResidualBoundary: Sendable {
    /// `h_l`, entering the layer.
    case layerInput
    /// After the attention sublayer's residual add.
    case afterAttention
    /// `h_{l+1}`, leaving the layer.
    case layerOutput
}

/// Sees the residual stream at each sublayer boundary during a forward pass. Analysis tools
/// (importance scores, logit lens) use it instead of a second forward implementation; without
/// an observer the forward pass does no extra work.
public protocol HiddenStateObserver: AnyObject {
    /// `hidden` is `[tokens × hiddenSize]` for plan step `step` (running layer `layer`).
    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int)
}
