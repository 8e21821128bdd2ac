/// The key-value metadata of a GGUF file, in file order, with typed accessors whose errors
/// name the file, the key, and the expected versus found type.
public struct GGUFMetadata: Sendable {
    /// The keys in file order.
    public let keys: [String]
    private let values: [String: GGUFValue]
    private let path: String

    init(path: String, keys: [String], values: [String: GGUFValue]) {
        self.path = path
        self.keys = keys
        self.values = values
    }

    /// The raw value stored under `key`, or nil when absent.
    public subscript(key: String) -> GGUFValue? { values[key] }

    // MARK: Required values

    /// The string under `key`.
    public func string(_ key: String) throws -> String {
        try required(key, "a string") { $0.stringValue }
    }

    /// The integer under `key`; any GGUF integer type is accepted (not bool).
    public func integer(_ key: String) throws -> Int {
        try required(key, "an integer") { $0.integerValue }
    }

    /// The float under `key`; float32 and float64 are accepted.
    public func float(_ key: String) throws -> Float {
        try required(key, "a float") { $0.floatValue }
    }

    /// The bool under `key`.
    public func bool(_ key: String) throws -> Bool {
        try required(key, "a bool") { $0.boolValue }
    }

    /// The array of strings under `key`.
    public func strings(_ key: String) throws -> [String] {
        try required(key, "an array of strings") { Self.elements(of: $0, \.stringValue) }
    }

    /// The array of integers (any integer type) under `key`.
    public func integers(_ key: String) throws -> [Int] {
        try required(key, "an array of integers") { Self.elements(of: $0, \.integerValue) }
    }

    /// The array of floats (float32 or float64) under `key`.
    public func floats(_ key: String) throws -> [Float] {
        try required(key, "an array of floats") { Self.elements(of: $0, \.floatValue) }
    }

    // MARK: Optional values: nil when absent, an error when present with the wrong type

    /// The string under `key`, or nil when absent.
    public func optionalString(_ key: String) throws -> String? {
        try optional(key, "a string") { $0.stringValue }
    }

    /// The integer under `key`, or nil when absent.
    public func optionalInteger(_ key: String) throws -> Int? {
        try optional(key, "an integer") { $0.integerValue }
    }

    /// The float under `key`, or nil when absent.
    public func optionalFloat(_ key: String) throws -> Float? {
        try optional(key, "a float") { $0.floatValue }
    }

    /// The bool under `key`, or nil when absent.
    public func optionalBool(_ key: String) throws -> Bool? {
        try optional(key, "a bool") { $0.boolValue }
    }

    /// The array of strings under `key`, or nil when absent.
    public func optionalStrings(_ key: String) throws -> [String]? {
        try optional(key, "an array of strings") { Self.elements(of: $0, \.stringValue) }
    }

    /// The array of integers under `key`, or nil when absent.
    public func optionalIntegers(_ key: String) throws -> [Int]? {
        try optional(key, "an array of integers") { Self.elements(of: $0, \.integerValue) }
    }

    /// The array of bools under `key`, or nil when absent.
    public func optionalBools(_ key: String) throws -> [Bool]? {
        try optional(key, "an array of bools") { Self.elements(of: $0, \.boolValue) }
    }

    /// The array of floats under `key`, or nil when absent.
    public func optionalFloats(_ key: String) throws -> [Float]? {
        try optional(key, "an array of floats") { Self.elements(of: $0, \.floatValue) }
    }

    // MARK: Conversion

    private func required<T>(_ key: String, _ expected: String, _ convert: (GGUFValue) -> T?) throws -> T {
        guard let value = try optional(key, expected, convert) else {
            throw FormatError(path: path, "missing metadata key '\(key)' (expected \(expected))")
        }
        return value
    }

    private func optional<T>(_ key: String, _ expected: String, _ convert: (GGUFValue) -> T?) throws -> T? {
        guard let value = values[key] else { return nil }
        guard let converted = convert(value) else {
            var found = value.summary
            if case .uint64(let number) = value, number > UInt64(Int.max) { found += ", which does not fit in Int" }
            throw FormatError(path: path, "metadata key '\(key)': expected \(expected), found \(found)")
        }
        return converted
    }

    private static func elements<T>(of value: GGUFValue, _ convert: (GGUFValue) -> T?) -> [T]? {
        guard case .array(let elements) = value else { return nil }
        var result: [T] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard let converted = convert(element) else { return nil }
            result.append(converted)
        }
        return result
    }
}
