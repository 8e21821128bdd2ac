#if canImport(Glibc)
import Glibc
#endif

/// How a head's dimensions are paired for rotation.
public enum RotaryStyle: Sendable {
    /// Adjacent pairs `(2i, 2i+1)`: llama.cpp's "normal" mode. Llama-architecture GGUFs store
    /// q/k rows permuted for exactly this pairing.
    case adjacentPairs
    /// Pairs `(i, i + d/2)`: GPT-NeoX style, used by Qwen2.
    case splitHalves
}

/// Rotary position embedding (RoPE).
public enum RotaryEmbedding {
    /// Inverse frequencies `base^(-2i/d)` for `i < dimensions/2`, in float32 as transformers
    /// computes them.
    public static func inverseFrequencies(dimensions: Int, base: Float) -> [Float] {
        (0..<(dimensions / 2)).map { index in
            1 / powf(base, Float(2 * index) / Float(dimensions))
        }
    }

    /// Fills rows `firstRow...` of `cosines` and `sines` (`[rows × dimensions/2]`) for the
    /// given positions. A batch of sequences fills one run of rows per sequence.
    public static func table(
        positions: Range<Int>, inverseFrequencies: [Float], cosines: inout [Float], sines: inout [Float],
        firstRow: Int = 0
    ) {
        let half = inverseFrequencies.count
        let end = (firstRow + positions.count) * half
        precondition(firstRow >= 0 && cosines.count >= end && sines.count >= end)
        for (offset, position) in positions.enumerated() {
            let row = firstRow + offset
            for index in 0..<half {
                let angle = Float(position) * inverseFrequencies[index]
                cosines[row * half + index] = cosf(angle)
                sines[row * half + index] = sinf(angle)
            }
        }
    }

    /// Rotates the first `rotaryDimensions` of each head of each token in place.
    /// `values` is `[tokens × heads × headDimensions]`; the tables are `[tokens × rotaryDimensions/2]`.
    public static func apply(
        _ values: inout [Float], tokens: Int, heads: Int, headDimensions: Int, rotaryDimensions: Int,
        style: RotaryStyle, cosines: [Float], sines: [Float]
    ) {
        let half = rotaryDimensions / 2
        precondition(values.count >= tokens * heads * headDimensions)
        precondition(cosines.count >= tokens * half && sines.count >= tokens * half)
        cosines.withUnsafeBufferPointer { cosineBuffer in
            sines.withUnsafeBufferPointer { sineBuffer in
                values.withUnsafeMutableBufferPointer { buffer in
                    for token in 0..<tokens {
                        let cosine = cosineBuffer.baseAddress! + token * half
                        let sine = sineBuffer.baseAddress! + token * half
                        for head in 0..<heads {
                            let x = buffer.baseAddress! + (token * heads + head) * headDimensions
                            for index in 0..<half {
                                let (first, second) = style == .adjacentPairs ? (2 * index, 2 * index + 1) : (index, index + half)
                                let a = x[first]
                                let b = x[second]
                                x[first] = a * cosine[index] - b * sine[index]
                                x[second] = b * cosine[index] + a * sine[index]
                            }
                        }
                    }
                }
            }
        }
    }
}
