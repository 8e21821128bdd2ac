import StrataKernels

/// Reads GGUF primitives front to back, checking bounds before every load so that a short or
/// corrupt file becomes a `FormatError` rather than a trap. Descriptions of what is being read
/// are autoclosures: building them for each of ~300k vocabulary strings would dominate parsing.
struct GGUFCursor {
    let bytes: ByteView
    let path: String
    private(set) var position = 0

    init(bytes: ByteView, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    func error(_ message: String, at offset: Int? = nil) -> FormatError {
        FormatError(path: path, offset: offset ?? position, message)
    }

    func ensure(_ length: Int, _ what: @autoclosure () -> String) throws(FormatError) {
        guard bytes.contains(start: position, length: length) else {
            throw error("truncated: \(what()) needs \(length) bytes but only \(max(remaining, 0)) remain "
                + "in the \(bytes.count)-byte file")
        }
    }

    mutating func integer<T: FixedWidthInteger>(
        _ type: T.Type, _ what: @autoclosure () -> String
    ) throws(FormatError) -> T {
        let size = MemoryLayout<T>.size
        try ensure(size, what())
        defer { position += size }
        return bytes.load(T.self, at: position)
    }

    /// A uint64 count of items each at least `minimumSize` bytes, rejected when the rest of the
    /// file could not hold that many, so a corrupt count never drives an allocation.
    mutating func count(_ what: @autoclosure () -> String, minimumSize: Int) throws(FormatError) -> Int {
        let start = position
        let raw = try integer(UInt64.self, what())
        let room = remaining / max(minimumSize, 1)
        guard raw <= UInt64(room) else {
            throw error("\(what()) is \(raw), but the \(remaining) bytes left in the file hold at most \(room)",
                        at: start)
        }
        return Int(raw)
    }

    mutating func string(_ what: @autoclosure () -> String) throws(FormatError) -> String {
        let length = try count("length of \(what())", minimumSize: 1)
        guard let text = bytes.string(at: position, count: length) else {
            throw error("\(what()) is not valid UTF-8 (\(length) bytes)")
        }
        position += length
        return text
    }

    /// Moves to the next multiple of `alignment` (a power of two); the result may pass the end.
    mutating func align(to alignment: Int) {
        position = (position + alignment - 1) & ~(alignment - 1)
    }
}

// MARK: Metadata values

extension GGUFCursor {
    /// Arrays of arrays recurse; a crafted file could nest deep enough to overflow the stack.
    static let maximumNesting = 16

    mutating func valueType(_ what: @autoclosure () -> String) throws(FormatError) -> GGUFValueType {
        let start = position
        let raw = try integer(UInt32.self, "value type of \(what())")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw error("\(what()) has unknown value type \(raw) (expected 0...12)", at: start)
        }
        return type
    }

    mutating func value(of type: GGUFValueType, key: String, depth: Int = 0) throws(FormatError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try integer(UInt8.self, "uint8 value of key '\(key)'"))
        case .int8: return .int8(try integer(Int8.self, "int8 value of key '\(key)'"))
        case .uint16: return .uint16(try integer(UInt16.self, "uint16 value of key '\(key)'"))
        case .int16: return .int16(try integer(Int16.self, "int16 value of key '\(key)'"))
        case .uint32: return .uint32(try integer(UInt32.self, "uint32 value of key '\(key)'"))
        case .int32: return .int32(try integer(Int32.self, "int32 value of key '\(key)'"))
        case .uint64: return .uint64(try integer(UInt64.self, "uint64 value of key '\(key)'"))
        case .int64: return .int64(try integer(Int64.self, "int64 value of key '\(key)'"))
        case .float32:
            return .float32(Float(bitPattern: try integer(UInt32.self, "float32 value of key '\(key)'")))
        case .float64:
            return .float64(Double(bitPattern: try integer(UInt64.self, "float64 value of key '\(key)'")))
        case .bool:
            let start = position
            let raw = try integer(UInt8.self, "bool value of key '\(key)'")
            guard raw <= 1 else {
                throw error("metadata key '\(key)': bool byte is \(raw), expected 0 or 1", at: start)
            }
            return .bool(raw == 1)
        case .string:
            return .string(try string("string value of key '\(key)'"))
        case .array:
            return .array(try arrayElements(key: key, depth: depth))
        }
    }

    private mutating func arrayElements(key: String, depth: Int) throws(FormatError) -> [GGUFValue] {
        guard depth < Self.maximumNesting else {
            throw error("metadata key '\(key)': arrays nested deeper than \(Self.maximumNesting) levels")
        }
        let elementType = try valueType("array element of key '\(key)'")
        let count = try count("element count of array '\(key)'", minimumSize: elementType.minimumSize)
        var elements: [GGUFValue] = []
        elements.reserveCapacity(count)
        for _ in 0..<count {
            elements.append(try value(of: elementType, key: key, depth: depth + 1))
        }
        return elements
    }
}
