// Shared helpers for the test targets.

/// The first index where two float arrays differ in bits (NaN payloads included), or nil.
public func firstBitwiseDifference(_ left: [Float], _ right: [Float]) -> Int? {
    if left.count != right.count { return min(left.count, right.count) }
    return left.indices.first { left[$0].bitPattern != right[$0].bitPattern }
}
