import StrataEngine
import StrataKernels

/// ZD [Layer-Wise Quantization]: the fraction of a layer's matrix weights whose z-score
/// magnitude exceeds 1. Each matrix is standardized by its own mean and standard deviation
/// (matrices of one layer differ in scale, so pooling them first would mostly measure which
/// matrix is widest); the counts are then pooled over the layer's seven matrices.
func weightOutlierFraction(_ layer: LayerWeights) -> Double {
    let matrices = [layer.query, layer.key, layer.value, layer.attentionOutput, layer.gate, layer.up, layer.down]
    var outliers = 0
    var total = 0
    for matrix in matrices {
        var values = [Float]()
        values.reserveCapacity(matrix.rows * matrix.columns)
        for row in 0..<matrix.rows { values.append(contentsOf: matrix.row(row)) }
        var sum = 0.0
        var squares = 0.0
        for value in values {
            sum += Double(value)
            squares += Double(value) * Double(value)
        }
        let count = Double(values.count)
        let mean = sum / count
        let deviation = max(squares / count - mean * mean, 0).squareRoot()
        outliers += values.reduce(0) { abs(Double($1) - mean) > deviation ? $0 + 1 : $0 }
        total += values.count
    }
    return Double(outliers) / Double(total)
}
