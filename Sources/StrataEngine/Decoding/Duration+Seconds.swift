extension Duration {
    /// The duration in seconds, as a floating-point number (timings and tokens/s). Package
    /// access: Strata's own helper, not a member every `Duration` of a user's code gains.
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
