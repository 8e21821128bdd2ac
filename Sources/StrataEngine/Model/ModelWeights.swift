import StrataFormats
import StrataKernels

/// The weights of one transformer layer. Matrices stay in the mapped file; norms and biases,
/// being small and used in float, are dequantized at load.
public struct LayerWeights: Sendable {
    /// [hidden]
    public var attentionNorm: [Float]
    /// [heads × headDimensions, hidden]
    public var query: WeightMatrix
    /// [kvHeads × headDimensions, hidden]
    public var key: WeightMatrix
    /// [kvHeads × headDimensions, hidden]
    public var value: WeightMatrix
    /// [hidden, heads × headDimensions]
    public var attentionOutput: WeightMatrix
    /// [heads × headDimensions], Qwen2 only
    public var queryBias: [Float]?
    /// [kvHeads × headDimensions], Qwen2 only
    public var keyBias: [Float]?
    /// [kvHeads × headDimensions], Qwen2 only
    public var valueBias: [Float]?
    /// [hidden]
    public var feedForwardNorm: [Float]
    /// [feedForward, hidden]
    public var gate: WeightMatrix
    /// [feedForward, hidden]
    public var up: WeightMatrix
    /// [hidden, feedForward]
    public var down: WeightMatrix
}

/// Every weight of a model, bound to named fields through `TensorNames`.
public struct ModelWeights: Sendable {
    /// [vocabulary, hidden]
    public var tokenEmbedding: WeightMatrix
    public var layers: [LayerWeights]
    /// [hidden]
    public var outputNorm: [Float]
    /// [vocabulary, hidden]; the token embedding itself when the model ties them.
    public var output: WeightMatrix

    /// These weights with every matrix the kernels for `precision` activations can repack
    /// repacked (`WeightMatrix.preparedForEightBitProducts`, `preparedForSixteenBitProducts`),
    /// the file's pages of those matrices released so resident memory holds them once. The token
    /// embedding is only read row by row, so it stays as it is (and a tied output matrix is
    /// prepared as a matrix of its own).
    public func prepared(for precision: ActivationPrecision, pool: WorkerPool) -> ModelWeights {
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

    /// Binds and checks every tensor `config` requires in `file`.
    public init(gguf file: GGUFFile, config: ModelConfig) throws {
        let binder = TensorBinder(file: file)
        let hidden = config.hiddenSize
        let queryWidth = config.headCount * config.headDimensions
        let kvWidth = config.kvHeadCount * config.headDimensions
        tokenEmbedding = try binder.matrix(TensorNames.tokenEmbedding, rows: config.vocabularySize, columns: hidden)
        output = config.tiedOutput
            ? tokenEmbedding
            : try binder.matrix(TensorNames.output, rows: config.vocabularySize, columns: hidden)
        outputNorm = try binder.vector(TensorNames.outputNorm, count: hidden)
        let hasBiases = config.architecture == .qwen2
        layers = try (0..<config.layerCount).map { index in
            let names = TensorNames.layer(index)
            return LayerWeights(
                attentionNorm: try binder.vector(names.attentionNorm, count: hidden),
                query: try binder.matrix(names.query, rows: queryWidth, columns: hidden),
                key: try binder.matrix(names.key, rows: kvWidth, columns: hidden),
                value: try binder.matrix(names.value, rows: kvWidth, columns: hidden),
                attentionOutput: try binder.matrix(names.attentionOutput, rows: hidden, columns: queryWidth),
                queryBias: hasBiases ? try binder.vector(names.queryBias, count: queryWidth) : nil,
                keyBias: hasBiases ? try binder.vector(names.keyBias, count: kvWidth) : nil,
                valueBias: hasBiases ? try binder.vector(names.valueBias, count: kvWidth) : nil,
                feedForwardNorm: try binder.vector(names.feedForwardNorm, count: hidden),
                gate: try binder.matrix(names.gate, rows: config.feedForwardSize, columns: hidden),
                up: try binder.matrix(names.up, rows: config.feedForwardSize, columns: hidden),
                down: try binder.matrix(names.down, rows: hidden, columns: config.feedForwardSize))
        }
        // layers past block_count would be ignored silently, running a different model
        for tensor in file.tensors {
            let parts = tensor.name.split(separator: ".", maxSplits: 2)
            guard parts.count == 3, parts[0] == "blk", let index = Int(parts[1]), index >= config.layerCount else { continue }
            throw ModelLoadError.invalidHyperParameter(
                file: file.path, key: "\(config.architecture.rawValue).block_count",
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
