import StrataKernels

/// Where one tensor lives in a GGUF file and how its elements are encoded.
public struct TensorInfo: Sendable, Equatable {
    /// The GGUF tensor name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// Dimensions in GGUF order: `shape[0]` (ne0) is the innermost, the row length / columns.
    public let shape: [Int]
    /// How the elements are encoded.
    public let format: QuantFormat
    /// Start of the tensor's bytes, relative to the file's `dataOffset`.
    public let offset: Int
    /// The product of `shape`.
    public let elementCount: Int
    /// Bytes the tensor occupies in `format`.
    public let byteCount: Int

    /// Describes a tensor. Traps unless the shape is non-empty and positive, its rows are whole
    /// blocks of `format`, and the sizes fit in `Int`: the reader validates files before this.
    public init(name: String, shape: [Int], format: QuantFormat, offset: Int) {
        let layout = Self.layout(shape: shape, format: format)
        guard case .success(let (elements, bytes)) = layout else {
            preconditionFailure("tensor '\(name)': \(layout)")
        }
        self.name = name
        self.shape = shape
        self.format = format
        self.offset = offset
        self.elementCount = elements
        self.byteCount = bytes
    }

    /// Element and byte counts of a tensor, or why the shape cannot be stored in `format`.
    static func layout(shape: [Int], format: QuantFormat) -> Result<(elements: Int, bytes: Int), LayoutError> {
        guard (1...4).contains(shape.count) else { return .failure(.dimensionCount(shape.count)) }
        var elements = 1
        for dimension in shape {
            guard dimension > 0 else { return .failure(.nonPositiveDimension(shape)) }
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return .failure(.overflow(shape)) }
            elements = product
        }
        // GGML quantizes each row on its own, so the row length (ne0) must be whole blocks.
        guard shape[0] % format.blockSize == 0 else { return .failure(.partialBlock(shape, format)) }
        guard let bytes = format.byteCount(elements: elements) else { return .failure(.overflow(shape)) }
        return .success((elements, bytes))
    }

    /// Why a shape is not storable; phrased to follow "tensor 'name': ".
    enum LayoutError: Error, CustomStringConvertible {
        case dimensionCount(Int)
        case nonPositiveDimension([Int])
        case overflow([Int])
        case partialBlock([Int], QuantFormat)

        var description: String {
            switch self {
            case .dimensionCount(let count): "has \(count) dimensions, expected 1...4"
            case .nonPositiveDimension(let shape): "shape \(shape) has a dimension that is not positive"
            case .overflow(let shape): "shape \(shape) has more elements or bytes than fit in Int"
            case .partialBlock(let shape, let format):
                "shape \(shape) in \(format): row length \(shape[0]) is not a multiple of "
                    + "\(format)'s block size \(format.blockSize)"
            }
        }
    }
}
