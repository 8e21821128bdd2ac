/// One metadata value of a GGUF file. Arrays hold elements of a single type and may nest.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32),
         uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String),
         array([GGUFValue])
}

/// The value type ids GGUF stores before each value and array.
enum GGUFValueType: UInt32, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// The fewest bytes one value of this type occupies; bounds corrupt counts before allocating.
    var minimumSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }

    var name: String { "\(self)" }
}

extension GGUFValue {
    var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    /// Any integer case as `Int`, or nil (also when a `uint64` exceeds `Int.max`).
    var integerValue: Int? {
        switch self {
        case .uint8(let value): Int(value)
        case .int8(let value): Int(value)
        case .uint16(let value): Int(value)
        case .int16(let value): Int(value)
        case .uint32(let value): Int(value)
        case .int32(let value): Int(value)
        case .uint64(let value): Int(exactly: value)
        case .int64(let value): Int(value)
        default: nil
        }
    }

    var floatValue: Float? {
        switch self {
        case .float32(let value): value
        case .float64(let value): Float(value)
        default: nil
        }
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// A short description for error messages: the type and, for scalars, the value.
    public var summary: String {
        switch self {
        case .string(let value):
            let shown = value.count > 40 ? String(value.prefix(40)) + "..." : value
            return "string \"\(shown)\""
        case .array(let elements):
            guard let first = elements.first else { return "empty array" }
            let mixed = elements.contains { $0.type != first.type }
            return "array of \(elements.count) \(mixed ? "mixed" : first.type.name) values"
        case .bool(let value): return "bool \(value)"
        case .float32(let value): return "float32 \(value)"
        case .float64(let value): return "float64 \(value)"
        case .uint64(let value): return "uint64 \(value)"
        default: return "\(type.name) \(integerValue.map(String.init) ?? "\(self)")"
        }
    }
}
