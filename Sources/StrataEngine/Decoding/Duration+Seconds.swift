extension Duration {
    /// The duration in seconds, as a floating-point number (timings and tokens/s).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
