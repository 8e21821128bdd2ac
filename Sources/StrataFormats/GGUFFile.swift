import StrataKernels

/// A parsed GGUF file: its metadata, its tensor directory, and zero-copy access to tensor bytes.
///
/// Parsing validates everything the directory claims (counts, types, shapes, offsets) against
/// the file's real size, so later code can slice tensor data without re-checking.
public struct GGUFFile: Sendable {
    /// The path the file was read from (or the label given to `init(bytes:path:)`).
    public let path: String
    /// The GGUF version: 2 or 3.
    public let version: UInt32
    /// The key-value metadata.
    public let metadata: GGUFMetadata
    /// The tensor directory in file order.
    public let tensors: [TensorInfo]
    /// `general.alignment`, or 32 when absent.
    public let alignment: Int
    /// Start of the tensor data section in the file.
    public let dataOffset: Int
    /// Size of the whole file in bytes.
    public let fileSize: Int

    private let bytes: ByteView
    private let tensorIndex: [String: Int]

    static let magic: [UInt8] = Array("GGUF".utf8)
    static let defaultAlignment = 32
    static let headerSize = 24

    /// Memory-maps and parses the file at `path`. Tensor data is not read until touched.
    public static func open(path: String) throws -> GGUFFile {
        let storage: ByteStorage
        do {
            storage = try ByteStorage.mapping(path: path)
        } catch {
            throw FormatError(path: path, "cannot open GGUF file: \(error)")
        }
        return try GGUFFile(bytes: ByteView(storage), path: path)
    }

    /// Parses GGUF from `bytes`; `path` labels error messages.
    public init(bytes: ByteView, path: String) throws {
        var cursor = GGUFCursor(bytes: bytes, path: path)
        let header = try Self.readHeader(&cursor)
        let metadata = try Self.readMetadata(&cursor, count: header.metadataCount)
        let alignment = try Self.alignment(of: metadata, path: path)
        let tensors = try Self.readTensorInfos(&cursor, count: header.tensorCount)
        cursor.align(to: alignment)

        self.path = path
        self.version = header.version
        self.metadata = metadata
        self.tensors = tensors
        self.alignment = alignment
        self.dataOffset = cursor.position
        self.fileSize = bytes.count
        self.bytes = bytes
        self.tensorIndex = try Self.validateTensorPlacement(
            tensors, dataOffset: cursor.position, alignment: alignment, fileSize: bytes.count, path: path)
    }

    /// The tensor called `name`, or nil.
    public func tensor(named name: String) -> TensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of `tensor` inside the file, without copying. `tensor` must come from this file.
    public func data(for tensor: TensorInfo) -> ByteView {
        bytes.slice(start: dataOffset + tensor.offset, length: tensor.byteCount)
    }
}

// MARK: Parsing

extension GGUFFile {
    private struct Header {
        var version: UInt32
        var tensorCount: Int
        var metadataCount: Int
    }

    private static func readHeader(_ cursor: inout GGUFCursor) throws(FormatError) -> Header {
        let bytes = cursor.bytes
        guard bytes.count >= magic.count else {
            throw cursor.error("file is \(bytes.count) bytes, shorter than a GGUF header (\(headerSize) bytes)", at: 0)
        }
        let found = bytes.bytes(at: 0, count: magic.count)
        guard found == magic else {
            let hex = found.map { String($0, radix: 16, uppercase: true) }.joined(separator: " ")
            let text = String(decoding: found.map { (32..<127).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
            throw cursor.error("not a GGUF file: expected magic \"GGUF\", found \"\(text)\" (\(hex))", at: 0)
        }
        _ = try cursor.integer(UInt32.self, "magic")
        let version = try cursor.integer(UInt32.self, "GGUF version")
        switch version {
        case 2, 3: break
        case 1:
            throw cursor.error("GGUF version 1 is not supported (it used 32-bit counts); "
                + "expected version 2 or 3, re-convert the model with a current llama.cpp", at: 4)
        default:
            let hint = version.byteSwapped <= 3 ? " (a big-endian file?)" : ""
            throw cursor.error("unsupported GGUF version \(version)\(hint); expected 2 or 3", at: 4)
        }
        guard bytes.count >= headerSize else {
            throw cursor.error("file is \(bytes.count) bytes, shorter than a GGUF header (\(headerSize) bytes)", at: 0)
        }
        // Smallest encodings: a tensor info is name length + n_dims + type + offset; a key-value
        // pair is key length + value type + one byte of value.
        let tensorCount = try cursor.count("tensor count", minimumSize: 24)
        let metadataCount = try cursor.count("metadata key-value count", minimumSize: 13)
        return Header(version: version, tensorCount: tensorCount, metadataCount: metadataCount)
    }

    private static func readMetadata(_ cursor: inout GGUFCursor, count: Int) throws(FormatError) -> GGUFMetadata {
        var keys: [String] = []
        var values: [String: GGUFValue] = [:]
        keys.reserveCapacity(count)
        values.reserveCapacity(count)
        for index in 0..<count {
            let start = cursor.position
            let key = try cursor.string("key of metadata entry \(index)")
            guard values[key] == nil else {
                throw cursor.error("duplicate metadata key '\(key)'", at: start)
            }
            let type = try cursor.valueType("metadata key '\(key)'")
            values[key] = try cursor.value(of: type, key: key)
            keys.append(key)
        }
        return GGUFMetadata(path: cursor.path, keys: keys, values: values)
    }

    private static func alignment(of metadata: GGUFMetadata, path: String) throws(FormatError) -> Int {
        let key = "general.alignment"
        guard let value = metadata[key] else { return defaultAlignment }
        guard let alignment = value.integerValue, alignment > 0, alignment <= Int(UInt32.max),
              alignment & (alignment - 1) == 0
        else {
            throw FormatError(path: path, "metadata key '\(key)': expected a power of two that fits "
                + "in uint32, found \(value.summary)")
        }
        return alignment
    }

    private static func readTensorInfos(_ cursor: inout GGUFCursor, count: Int) throws(FormatError) -> [TensorInfo] {
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(count)
        for index in 0..<count {
            let start = cursor.position
            let name = try cursor.string("name of tensor \(index)")
            let dimensionCount = try cursor.integer(UInt32.self, "dimension count of tensor '\(name)'")
            guard (1...4).contains(dimensionCount) else {
                throw cursor.error("tensor '\(name)' has \(dimensionCount) dimensions, expected 1...4",
                                   at: cursor.position - 4)
            }
            var shape: [Int] = []
            for axis in 0..<Int(dimensionCount) {
                let raw = try cursor.integer(UInt64.self, "dimension \(axis) of tensor '\(name)'")
                guard raw > 0, raw <= UInt64(Int.max) else {
                    throw cursor.error("tensor '\(name)': dimension \(axis) is \(raw), expected 1...\(Int.max)",
                                       at: cursor.position - 8)
                }
                shape.append(Int(raw))
            }
            let typeID = try cursor.integer(UInt32.self, "type of tensor '\(name)'")
            guard let format = QuantFormat(rawValue: typeID) else {
                throw cursor.error("tensor '\(name)' has unknown GGML type id \(typeID)", at: cursor.position - 4)
            }
            let rawOffset = try cursor.integer(UInt64.self, "data offset of tensor '\(name)'")
            guard let offset = Int(exactly: rawOffset) else {
                throw cursor.error("tensor '\(name)': data offset \(rawOffset) is past the end of the "
                    + "\(cursor.bytes.count)-byte file", at: cursor.position - 8)
            }
            if case .failure(let problem) = TensorInfo.layout(shape: shape, format: format) {
                throw cursor.error("tensor '\(name)' \(problem)", at: start)
            }
            tensors.append(TensorInfo(name: name, shape: shape, format: format, offset: offset))
        }
        return tensors
    }

    /// Checks names are unique and every tensor lies aligned, inside the file, and apart from
    /// the others; returns the name index.
    private static func validateTensorPlacement(
        _ tensors: [TensorInfo], dataOffset: Int, alignment: Int, fileSize: Int, path: String
    ) throws(FormatError) -> [String: Int] {
        var index: [String: Int] = [:]
        index.reserveCapacity(tensors.count)
        let dataSize = fileSize - dataOffset
        for (position, tensor) in tensors.enumerated() {
            guard index.updateValue(position, forKey: tensor.name) == nil else {
                throw FormatError(path: path, "duplicate tensor name '\(tensor.name)'")
            }
            guard tensor.offset % alignment == 0 else {
                throw FormatError(path: path, "tensor '\(tensor.name)': data offset \(tensor.offset) is "
                    + "not a multiple of the alignment \(alignment)")
            }
            // Compare against the space left so the sum cannot overflow.
            guard dataSize >= 0, tensor.offset <= dataSize, tensor.byteCount <= dataSize - tensor.offset else {
                throw FormatError(path: path, "tensor '\(tensor.name)' (\(tensor.format) \(tensor.shape), "
                    + "\(tensor.byteCount) bytes at data offset \(tensor.offset), file offset "
                    + "\(dataOffset &+ tensor.offset)) extends past the end of the \(fileSize)-byte file")
            }
        }
        let byStart = tensors.sorted { $0.offset < $1.offset }
        for (previous, next) in zip(byStart, byStart.dropFirst()) where next.offset < previous.offset + previous.byteCount {
            throw FormatError(path: path, "tensors '\(previous.name)' (data offset \(previous.offset), "
                + "\(previous.byteCount) bytes) and '\(next.name)' (data offset \(next.offset)) overlap")
        }
        return index
    }
}
