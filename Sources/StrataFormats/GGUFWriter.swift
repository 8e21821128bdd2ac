import Foundation
import StrataKernels

/// Builds a GGUF version 3 file: metadata in insertion order, then tensors in insertion order,
/// each tensor's data starting at a multiple of `alignment`.
///
/// Tensor data may be byte arrays, views into another mapped file (for exporting a model
/// without copying it into memory first) or zeros; `write(to:overwrite:progress:)` streams it
/// to disk.
public struct GGUFWriter: Sendable {
    /// The alignment of the tensor data section and of every tensor's data.
    public let alignment: Int
    private var keys: [String] = []
    private var values: [String: GGUFValue] = [:]
    private var tensors: [PendingTensor] = []
    private var tensorNames: Set<String> = []

    private struct PendingTensor: Sendable {
        var name: String
        var shape: [Int]
        var format: QuantFormat
        var byteCount: Int
        var data: TensorData
    }

    private enum TensorData: Sendable {
        case array([UInt8])
        case view(ByteView)
        /// `byteCount` zero bytes, produced while writing rather than held in memory.
        case zeros
    }

    /// Label for errors from in-memory building, which has no file path.
    private static let label = "GGUF writer"
    /// Streaming granularity when copying a tensor out of a mapped view.
    private static let chunkSize = 1 << 22

    /// A writer whose data is aligned to `alignment` bytes (a power of two); any value other
    /// than GGUF's default 32 is recorded as `general.alignment`.
    public init(alignment: Int = 32) {
        self.alignment = alignment
        if alignment != GGUFFile.defaultAlignment, let stored = UInt32(exactly: alignment) {
            set("general.alignment", .uint32(stored))
        }
    }

    /// Sets metadata `key` to `value`; a key set again keeps its first position.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Adds a tensor whose encoded bytes are `data`.
    public mutating func addTensor(name: String, shape: [Int], format: QuantFormat, data: [UInt8]) throws {
        try add(name: name, shape: shape, format: format, count: data.count, data: .array(data))
    }

    /// Adds a tensor whose encoded bytes are `data`, read only when the file is produced.
    public mutating func addTensor(name: String, shape: [Int], format: QuantFormat, data: ByteView) throws {
        try add(name: name, shape: shape, format: format, count: data.count, data: .view(data))
    }

    /// Adds a tensor whose bytes are all zero. In every GGML format zero bytes decode to
    /// zeros (each block's scales and codes are zero), so this is the all-zero matrix of `shape`.
    public mutating func addZeroTensor(name: String, shape: [Int], format: QuantFormat) throws {
        let byteCount: Int
        switch TensorInfo.layout(shape: shape, format: format) {
        case .success(let layout): byteCount = layout.bytes
        case .failure(let problem): throw FormatError(path: Self.label, "tensor '\(name)' \(problem)")
        }
        try add(name: name, shape: shape, format: format, count: byteCount, data: .zeros)
    }

    /// Bytes of the file `write(to:overwrite:progress:)` produces: header, metadata, directory
    /// and padded tensor data.
    public func fileSize() throws -> Int {
        try header(path: Self.label).count + dataSize
    }

    /// Bytes of the tensor data section, each tensor padded to the alignment.
    private var dataSize: Int {
        tensors.reduce(0) { $0 + $1.byteCount + padding(after: $1.byteCount).count }
    }

    private mutating func add(name: String, shape: [Int], format: QuantFormat, count: Int, data: TensorData) throws {
        guard !tensorNames.contains(name) else {
            throw FormatError(path: Self.label, "duplicate tensor name '\(name)'")
        }
        let byteCount: Int
        switch TensorInfo.layout(shape: shape, format: format) {
        case .success(let layout): byteCount = layout.bytes
        case .failure(let problem): throw FormatError(path: Self.label, "tensor '\(name)' \(problem)")
        }
        guard count == byteCount else {
            throw FormatError(path: Self.label, "tensor '\(name)' (\(format) \(shape)) needs \(byteCount) bytes, "
                + "got \(count)")
        }
        tensorNames.insert(name)
        tensors.append(PendingTensor(name: name, shape: shape, format: format, byteCount: byteCount, data: data))
    }

    /// The whole file in memory.
    public func bytes() throws -> [UInt8] {
        var output = try header(path: Self.label)
        for tensor in tensors {
            switch tensor.data {
            case .array(let data): output += data
            case .view(let view): output += view.bytes(at: 0, count: view.count)
            case .zeros: output += [UInt8](repeating: 0, count: tensor.byteCount)
            }
            output += padding(after: tensor.byteCount)
        }
        return output
    }

    /// Writes the file to `path` through a temporary sibling that is renamed into place, so a
    /// failed write never leaves a truncated model behind. Refuses to replace an existing file
    /// unless `overwrite` is true. `progress`, if given, is called after each chunk with the
    /// bytes written so far and the file's size.
    public func write(
        to path: String, overwrite: Bool = false, progress: ((_ written: Int, _ total: Int) -> Void)? = nil
    ) throws {
        let files = FileManager.default
        if files.fileExists(atPath: path) && !overwrite {
            throw FormatError(path: path, "refusing to overwrite an existing file (pass overwrite: true)")
        }
        let header = try header(path: path)
        let temporary = path + ".partial"
        guard files.createFile(atPath: temporary, contents: nil) else {
            throw FormatError(path: path, "cannot create \(temporary)")
        }
        let total = header.count + dataSize
        var written = 0
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            func emit(_ bytes: [UInt8]) throws {
                try handle.write(contentsOf: Data(bytes))
                written += bytes.count
            }
            try emit(header)
            for tensor in tensors {
                for start in stride(from: 0, to: tensor.byteCount, by: Self.chunkSize) {
                    let length = min(Self.chunkSize, tensor.byteCount - start)
                    switch tensor.data {
                    case .array(let data): try emit(Array(data[start..<(start + length)]))
                    case .view(let view): try emit(view.bytes(at: start, count: length))
                    case .zeros: try emit([UInt8](repeating: 0, count: length))
                    }
                    progress?(written, total)
                }
                try emit(padding(after: tensor.byteCount))
            }
            try handle.synchronize()
            if files.fileExists(atPath: path) { try files.removeItem(atPath: path) }
            try files.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? files.removeItem(atPath: temporary)
            throw FormatError(path: path, "cannot write GGUF file: \(error)")
        }
    }

    // MARK: Encoding

    private func padding(after length: Int) -> [UInt8] {
        [UInt8](repeating: 0, count: (alignment - length % alignment) % alignment)
    }

    /// Everything before the tensor data: header, metadata, tensor directory, padding.
    private func header(path: String) throws -> [UInt8] {
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= Int(UInt32.max) else {
            throw FormatError(path: path, "alignment \(alignment) is not a power of two that fits in uint32")
        }
        if let stored = values["general.alignment"], stored.integerValue != alignment {
            throw FormatError(path: path, "metadata key 'general.alignment' is \(stored.summary) but the "
                + "writer aligns to \(alignment)")
        }
        var encoder = GGUFEncoder()
        encoder.append(GGUFFile.magic)
        encoder.append(UInt32(3))
        encoder.append(UInt64(tensors.count))
        encoder.append(UInt64(keys.count))
        for key in keys {
            encoder.append(key)
            try encoder.append(typed: values[key] ?? .array([]), key: key, path: path)
        }
        var offset = 0
        for tensor in tensors {
            encoder.append(tensor.name)
            encoder.append(UInt32(tensor.shape.count))
            for dimension in tensor.shape { encoder.append(UInt64(dimension)) }
            encoder.append(tensor.format.rawValue)
            encoder.append(UInt64(offset))
            offset += tensor.byteCount + padding(after: tensor.byteCount).count
        }
        encoder.append(padding(after: encoder.bytes.count))
        return encoder.bytes
    }
}

/// Little-endian serialization of GGUF primitives into a byte array.
struct GGUFEncoder {
    var bytes: [UInt8] = []

    mutating func append(_ raw: [UInt8]) { bytes += raw }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        for shift in stride(from: 0, to: T.bitWidth, by: 8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    mutating func append(_ text: String) {
        append(UInt64(text.utf8.count))
        bytes += text.utf8
    }

    /// The value's type id followed by the value.
    mutating func append(typed value: GGUFValue, key: String, path: String) throws {
        append(value.type.rawValue)
        try append(value, key: key, path: path)
    }

    private mutating func append(_ value: GGUFValue, key: String, path: String) throws {
        switch value {
        case .uint8(let number): append(number)
        case .int8(let number): append(number)
        case .uint16(let number): append(number)
        case .int16(let number): append(number)
        case .uint32(let number): append(number)
        case .int32(let number): append(number)
        case .uint64(let number): append(number)
        case .int64(let number): append(number)
        case .float32(let number): append(number.bitPattern)
        case .float64(let number): append(number.bitPattern)
        case .bool(let flag): append(UInt8(flag ? 1 : 0))
        case .string(let text): append(text)
        case .array(let elements):
            // GGUF arrays carry one element type; an empty array's type is irrelevant.
            let elementType = elements.first?.type ?? .uint8
            guard elements.allSatisfy({ $0.type == elementType }) else {
                throw FormatError(path: path, "metadata key '\(key)': array mixes element types "
                    + "(\(value.summary)); GGUF arrays hold one type")
            }
            append(elementType.rawValue)
            append(UInt64(elements.count))
            for element in elements { try append(element, key: key, path: path) }
        }
    }
}
