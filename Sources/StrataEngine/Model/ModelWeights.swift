import StrataFormats
import StrataKernels

/// The weights of one transformer layer. Matrices stay in the mapped file; norms and biases,
/// being small and used in float, are dequantized at load.
package struct LayerWeights: Sendable {
    /// [hidden]
    package var attentionNorm: [Float]
    /// [heads × headDimensions, hidden]
    package var query: WeightMatrix
    /// [kvHeads × headDimensions, hidden]
    package var key: WeightMatrix
    /// [kvHeads × headDimensions, hidden]
    package var value: WeightMatrix
    /// [hidden, heads × headDimensions]
    package var attentionOutput: WeightMatrix
    /// [heads × headDimensions], when the family has attention biases
    package var queryBias: [Float]?
    /// [kvHeads × headDimensions], when the family has attention biases
    package var keyBias: [Float]?
    /// [kvHeads × headDimensions], when the family has attention biases
    package var valueBias: [Float]?
    /// [headDimensions], when the family normalizes each query head
    package var queryNorm: [Float]?
    /// [headDimensions], when the family normalizes each key head
    package var keyNorm: [Float]?
    /// [hidden], when the family normalizes the attention output before the residual add
    package var postAttentionNorm: [Float]?
    /// [hidden]
    package var feedForwardNorm: [Float]
    /// [feedForward, hidden]
    package var gate: WeightMatrix
    /// [feedForward, hidden]
    package var up: WeightMatrix
    /// [hidden, feedForward]
    package var down: WeightMatrix
    /// [hidden], when the family normalizes the feed-forward output before the residual add
    package var postFeedForwardNorm: [Float]?
}

/// Every weight of a model, bound to named fields through its architecture's `TensorNames`.
package struct ModelWeights: Sendable {
    /// [vocabulary, hidden]
    package var tokenEmbedding: WeightMatrix
    package var layers: [LayerWeights]
    /// [hidden]
    package var outputNorm: [Float]
    /// [vocabulary, hidden]; the token embedding itself when the model ties them.
    package var output: WeightMatrix

    /// These weights with every matrix the kernels for `precision` activations can repack
    /// repacked (`WeightMatrix.preparedForEightBitProducts`, `preparedForSixteenBitProducts`),
    /// the file's pages of those matrices released so resident memory holds them once. The token
    /// embedding is only read row by row, so it stays as it is (and a tied output matrix is
    /// prepared as a matrix of its own).
    package func prepared(for precision: ActivationPrecision, pool: WorkerPool) -> ModelWeights {
        func prepared(_ matrix: WeightMatrix) -> WeightMatrix {
            switch precision {
            case .eightBit: matrix.preparedForEightBitProducts(releasingFilePages: true, pool: pool)
            case .sixteenBit: matrix.preparedForSixteenBitProducts(releasingFilePages: true, pool: pool)
            }
        }
        var result = self
        result.layers = layers.map { layer in
            var layer = layer
            layer.query = prepared(layer.query)
            layer.key = prepared(layer.key)
            layer.value = prepared(layer.value)
            layer.attentionOutput = prepared(layer.attentionOutput)
            layer.gate = prepared(layer.gate)
            layer.up = prepared(layer.up)
            layer.down = prepared(layer.down)
            return layer
        }
        result.output = prepared(output)
        return result
    }

    /// Binds and checks every tensor `architecture` requires in `file` for the shapes of `config`.
    package init(gguf file: GGUFFile, config: ModelConfig, architecture: any ModelArchitecture) throws {
        let binder = TensorBinder(file: file)
        let names = architecture.tensorNames
        let hidden = config.hiddenSize
        let queryWidth = config.headCount * config.headDimensions
        let kvWidth = config.kvHeadCount * config.headDimensions
        tokenEmbedding = try binder.matrix(names.tokenEmbedding, rows: config.vocabularySize, columns: hidden)
        output = config.tiedOutput
            ? tokenEmbedding
            : try binder.matrix(names.output, rows: config.vocabularySize, columns: hidden)
        outputNorm = try binder.vector(names.outputNorm, count: hidden)
        layers = try (0..<config.layerCount).map { index in
            func matrix(_ suffix: String, rows: Int, columns: Int) throws -> WeightMatrix {
                try binder.matrix(names.layer(index, suffix), rows: rows, columns: columns)
            }
            func vector(_ suffix: String, count: Int) throws -> [Float] {
                try binder.vector(names.layer(index, suffix), count: count)
            }
            /// The vector when the family has it; nil without looking for it otherwise.
            func vector(_ suffix: String, count: Int, if present: Bool) throws -> [Float]? {
                present ? try vector(suffix, count: count) : nil
            }
            let biases = architecture.hasAttentionBiases
            let headNorms = architecture.hasQueryKeyNorms
            let outputNorms = architecture.hasSublayerOutputNorms
            let feedForward = config.feedForwardSize
            let query, key, value, gate, up: WeightMatrix
            if architecture.fusesProjections {
                let fused = try matrix(names.fusedQueryKeyValue, rows: queryWidth + 2 * kvWidth, columns: hidden)
                query = fused.rows(0..<queryWidth)
                key = fused.rows(queryWidth..<(queryWidth + kvWidth))
                value = fused.rows((queryWidth + kvWidth)..<(queryWidth + 2 * kvWidth))
                let gateUp = try matrix(names.up, rows: 2 * feedForward, columns: hidden)
                gate = gateUp.rows(0..<feedForward)
                up = gateUp.rows(feedForward..<(2 * feedForward))
            } else {
                query = try matrix(names.query, rows: queryWidth, columns: hidden)
                key = try matrix(names.key, rows: kvWidth, columns: hidden)
                value = try matrix(names.value, rows: kvWidth, columns: hidden)
                gate = try matrix(names.gate, rows: feedForward, columns: hidden)
                up = try matrix(names.up, rows: feedForward, columns: hidden)
            }
            return LayerWeights(
                attentionNorm: try vector(names.attentionNorm, count: hidden),
                query: query,
                key: key,
                value: value,
                attentionOutput: try matrix(names.attentionOutput, rows: hidden, columns: queryWidth),
                queryBias: try vector(names.queryBias, count: queryWidth, if: biases),
                keyBias: try vector(names.keyBias, count: kvWidth, if: biases),
                valueBias: try vector(names.valueBias, count: kvWidth, if: biases),
                queryNorm: try vector(names.queryNorm, count: config.headDimensions, if: headNorms),
                keyNorm: try vector(names.keyNorm, count: config.headDimensions, if: headNorms),
                postAttentionNorm: try vector(names.postAttentionNorm, count: hidden, if: outputNorms),
                feedForwardNorm: try vector(names.feedForwardNorm, count: hidden),
                gate: gate,
                up: up,
                down: try matrix(names.down, rows: hidden, columns: config.feedForwardSize),
                postFeedForwardNorm: try vector(names.postFeedForwardNorm, count: hidden, if: outputNorms))
        }
        // layers past block_count would be ignored silently, running a different model
        for tensor in file.tensors {
            let parts = tensor.name.split(separator: ".", maxSplits: 2)
            guard parts.count == 3, parts[0] == "blk", let index = Int(parts[1]), index >= config.layerCount else { continue }
            throw ModelLoadError.invalidHyperParameter(
                file: file.path, key: "\(architecture.metadataPrefix).block_count",
                reason: "is \(config.layerCount), but the file has tensor '\(tensor.name)' of layer \(index)")
        }
    }
}

/// Looks tensors up by name and checks shape and format, naming the tensor in every error.
struct TensorBinder {
    let file: GGUFFile

    func info(_ name: String, shape: [Int]) throws -> TensorInfo {
        guard let tensor = file.tensor(named: name) else {
            throw ModelLoadError.missingTensor(file: file.path, name: name)
        }
        guard tensor.shape == shape else {
            throw ModelLoadError.tensorShape(file: file.path, name: name, expected: shape, found: tensor.shape)
        }
        guard tensor.format.isComputable else {
            throw ModelLoadError.tensorFormat(
                file: file.path, name: name, found: tensor.format, reason: "the engine cannot compute with this format")
        }
        return tensor
    }

    /// A `[rows, columns]` matrix (GGUF shape `[columns, rows]`).
    func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
        let tensor = try info(name, shape: [columns, rows])
        guard let matrix = WeightMatrix(format: tensor.format, rows: rows, columns: columns, bytes: file.data(for: tensor)) else {
            throw ModelLoadError.tensorFormat(
                file: file.path, name: name, found: tensor.format,
                reason: "rows of \(columns) elements do not fit its block size \(tensor.format.blockSize)")
        }
        return matrix
    }

    /// A 1-D tensor of `count` values, dequantized to float.
    func vector(_ name: String, count: Int) throws -> [Float] {
        let tensor = try info(name, shape: [count])
        return file.data(for: tensor).dequantized(tensor.format, count: count)
    }
}
