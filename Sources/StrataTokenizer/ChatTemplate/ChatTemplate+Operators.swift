/// Python's arithmetic, comparison and `json.dumps` on template values.
extension TemplateRenderer {
    /// Longest string (in Unicode scalars) or list that `*`, `+`, `~`, `join` and `replace`
    /// may build, and the longest rendered output. A template that gets near it is a bug or
    /// an attack (doubling a string 40 times asks for terabytes), and refusing keeps
    /// rendering from exhausting memory; the longest real prompts (a million tokens of
    /// context) are a few million characters.
    static let maximumLength = 10_000_000

    /// `pieces` joined by `separator`, unless the result would exceed `maximumLength`.
    static func joinedWithinLimit(_ pieces: [String], separator: String = "") throws -> String {
        var length = separator.unicodeScalars.count * max(pieces.count - 1, 0)
        for piece in pieces {
            length += piece.unicodeScalars.count
            guard length <= maximumLength else {
                throw failure("joined string is too long (more than \(maximumLength) characters)")
            }
        }
        return pieces.joined(separator: separator)
    }

    func arithmetic(_ operation: BinaryOperator, _ left: Value, _ right: Value) throws -> Value {
        if case .undefined(let hint) = left { throw Self.failure(hint) }
        if case .undefined(let hint) = right { throw Self.failure(hint) }
        if let a = left.numericValue, let b = right.numericValue { return try numeric(operation, a, b) }
        switch (operation, left, right) {
        case let (.add, .string(a), .string(b)):
            guard a.unicodeScalars.count + b.unicodeScalars.count <= Self.maximumLength else {
                throw Self.failure("concatenated string is too long (more than \(Self.maximumLength) characters)")
            }
            return .string(a + b)
        case let (.add, .array(a), .array(b)):
            guard a.count + b.count <= Self.maximumLength else { throw Self.failure("concatenated list is too long") }
            return .array(a + b)
        case let (.multiply, .string(text), count), let (.multiply, count, .string(text)):
            guard let times = count.numericValue, case .integer(let n) = times else { break }
            guard n <= 0 || text.unicodeScalars.count <= Self.maximumLength / n else {
                throw Self.failure("repeated string is too long")
            }
            return .string(String(repeating: text, count: max(n, 0)))
        case let (.multiply, .array(items), count), let (.multiply, count, .array(items)):
            guard let times = count.numericValue, case .integer(let n) = times else { break }
            guard n <= 0 || items.count <= Self.maximumLength / n else { throw Self.failure("repeated list is too long") }
            return .array(Array([[Value]](repeating: items, count: max(n, 0)).joined()))
        default:
            break
        }
        if operation == .add, case .string = left {
            throw Self.failure("can only concatenate str (not \"\(right.typeName)\") to str")
        }
        throw Self.failure("unsupported operand type(s) for \(Self.symbol(operation)): '\(left.typeName)' and '\(right.typeName)'")
    }

    private static func symbol(_ operation: BinaryOperator) -> String {
        switch operation {
        case .add: "+"
        case .subtract: "-"
        case .multiply: "*"
        case .divide: "/"
        case .floorDivide: "//"
        case .modulo: "%"
        case .power: "**"
        }
    }

    private func numeric(_ operation: BinaryOperator, _ left: Number, _ right: Number) throws -> Value {
        if case .integer(let a) = left, case .integer(let b) = right {
            return try integerArithmetic(operation, a, b)
        }
        let a = left.asDouble
        let b = right.asDouble
        switch operation {
        case .add: return .double(a + b)
        case .subtract: return .double(a - b)
        case .multiply: return .double(a * b)
        case .divide:
            guard b != 0 else { throw Self.failure("float division by zero") }
            return .double(a / b)
        case .floorDivide:
            guard b != 0 else { throw Self.failure("float floor division by zero") }
            return .double((a / b).rounded(.down))
        case .modulo:
            guard b != 0 else { throw Self.failure("float modulo") }
            // Python's result takes the sign of the divisor.
            let remainder = a.truncatingRemainder(dividingBy: b)
            return .double(remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder)
        case .power:
            guard case .integer(let exponent) = right else {
                throw Self.failure("'**' with a non-integer exponent is not supported")
            }
            var result = 1.0
            for _ in 0..<exponent.magnitude { result *= a }
            return .double(exponent < 0 ? 1 / result : result)
        }
    }

    private func integerArithmetic(_ operation: BinaryOperator, _ a: Int, _ b: Int) throws -> Value {
        func checked(_ result: (partialValue: Int, overflow: Bool)) throws -> Value {
            guard !result.overflow else { throw Self.failure("integer overflow") }
            return .integer(result.partialValue)
        }
        switch operation {
        case .add: return try checked(a.addingReportingOverflow(b))
        case .subtract: return try checked(a.subtractingReportingOverflow(b))
        case .multiply: return try checked(a.multipliedReportingOverflow(by: b))
        case .divide:
            guard b != 0 else { throw Self.failure("division by zero") }
            return .double(Double(a) / Double(b))
        case .floorDivide, .modulo:
            guard b != 0 else { throw Self.failure("integer division or modulo by zero") }
            // Python floors toward negative infinity; Swift truncates toward zero.
            var quotient = a / b
            var remainder = a % b
            if remainder != 0 && (remainder < 0) != (b < 0) {
                quotient -= 1
                remainder += b
            }
            return .integer(operation == .floorDivide ? quotient : remainder)
        case .power:
            guard b >= 0 else { return try numeric(.power, .double(Double(a)), .integer(b)) }
            var result = 1
            for _ in 0..<b {
                let step = result.multipliedReportingOverflow(by: a)
                guard !step.overflow else { throw Self.failure("integer overflow") }
                result = step.partialValue
            }
            return .integer(result)
        }
    }

    func compare(_ operation: ComparisonOperator, _ left: Value, _ right: Value) throws -> Bool {
        switch operation {
        case .equal: return left.pythonEquals(right)
        case .notEqual: return !left.pythonEquals(right)
        case .contains: return try contains(right, left)
        case .notContains: return !(try contains(right, left))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            if case .undefined(let hint) = left { throw Self.failure(hint) }
            if case .undefined(let hint) = right { throw Self.failure(hint) }
            let swapped = operation == .greater || operation == .greaterOrEqual
            let (first, second) = swapped ? (right, left) : (left, right)
            guard let less = first.pythonLess(than: second) else {
                throw Self.failure("comparison not supported between instances of '\(left.typeName)' and '\(right.typeName)'")
            }
            return less || ((operation == .lessOrEqual || operation == .greaterOrEqual) && left.pythonEquals(right))
        }
    }

    /// Python's `needle in container`.
    func contains(_ container: Value, _ needle: Value) throws -> Bool {
        switch container {
        case .undefined: return false
        case .string(let text):
            guard case .string(let part) = needle else {
                throw Self.failure("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            return text.containsScalars(part)
        case .array(let items): return items.contains { $0.pythonEquals(needle) }
        case .dictionary(let entries):
            guard case .string(let key) = needle else { return false }
            return entries[key] != nil
        default:
            throw Self.failure("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

extension String {
    /// Substring search by Unicode scalars, as Python does (Swift's `contains` would match by
    /// grapheme clusters).
    func containsScalars(_ part: String) -> Bool {
        scalarRanges(of: part, limit: 1).count == 1
    }

    /// Non-overlapping occurrences of `part`, left to right, as scalar offsets.
    func scalarRanges(of part: String, limit: Int = .max) -> [Range<Int>] {
        let text = Array(unicodeScalars)
        let pattern = Array(part.unicodeScalars)
        var found: [Range<Int>] = []
        guard !pattern.isEmpty else { return (0...text.count).prefix(limit).map { $0..<$0 } }
        var start = 0
        while start + pattern.count <= text.count && found.count < limit {
            if text[start..<start + pattern.count].elementsEqual(pattern) {
                found.append(start..<start + pattern.count)
                start += pattern.count
            } else {
                start += 1
            }
        }
        return found
    }
}

extension Value {
    func requireInteger(_ context: String) throws -> Int {
        guard let number = numericValue, case .integer(let value) = number else {
            throw TemplateRenderer.failure("\(context) expects an integer, got '\(typeName)'")
        }
        return value
    }

    func requireString(_ context: String) throws -> String {
        guard case .string(let text) = self else {
            throw TemplateRenderer.failure("\(context) expects a string, got '\(typeName)'")
        }
        return text
    }
}

/// `json.dumps` options that templates pass to `tojson`.
struct JSONStyle {
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys = false
    var asciiOnly = false

    init(indent: String?, separators: (item: String, key: String)? = nil, sortKeys: Bool = false, asciiOnly: Bool = false) {
        self.indent = indent
        // Python drops the space after ',' when indenting, so lines do not end in blanks.
        itemSeparator = separators?.item ?? (indent == nil ? ", " : ",")
        keySeparator = separators?.key ?? ": "
        self.sortKeys = sortKeys
        self.asciiOnly = asciiOnly
    }
}

/// Python's `json.dumps(value, ...)` as Hugging Face's `tojson` filter calls it.
func formatJSON(_ value: Value, style: JSONStyle, level: Int = 0) throws -> String {
    func container(_ open: String, _ close: String, _ parts: [String]) -> String {
        guard !parts.isEmpty else { return open + close }
        guard let indent = style.indent else { return open + parts.joined(separator: style.itemSeparator) + close }
        let inner = "\n" + String(repeating: indent, count: level + 1)
        let outer = "\n" + String(repeating: indent, count: level)
        return open + inner + parts.joined(separator: style.itemSeparator + inner) + outer + close
    }
    switch value {
    case .none: return "null"
    case .bool(let flag): return flag ? "true" : "false"
    case .integer(let number): return String(number)
    case .double(let number):
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        return formatPythonFloat(number)
    case .string(let text): return quoteJSONString(text, asciiOnly: style.asciiOnly)
    case .array(let items):
        return container("[", "]", try items.map { try formatJSON($0, style: style, level: level + 1) })
    case .dictionary(let entries):
        var pairs = entries.entries
        if style.sortKeys { pairs.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) } }
        return container("{", "}", try pairs.map {
            quoteJSONString($0.key, asciiOnly: style.asciiOnly) + style.keySeparator
                + (try formatJSON($0.value, style: style, level: level + 1))
        })
    default:
        throw TemplateRenderer.failure("Object of type \(value.typeName) is not JSON serializable")
    }
}

private func quoteJSONString(_ text: String, asciiOnly: Bool) -> String {
    func hexEscape(_ code: UInt32) -> String {
        let hex = String(code, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
    let escaped = text.replacingScalars { scalar in
        switch scalar {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\u{08}": return "\\b"
        case "\u{0C}": return "\\f"
        default:
            guard scalar.value < 0x20 || (asciiOnly && scalar.value > 0x7E) else { return nil }
            guard scalar.value > 0xFFFF else { return hexEscape(scalar.value) }
            // Python writes astral characters as UTF-16 surrogate pairs.
            let offset = scalar.value - 0x10000
            return hexEscape(0xD800 + (offset >> 10)) + hexEscape(0xDC00 + (offset & 0x3FF))
        }
    }
    return "\"" + escaped + "\""
}

extension String {
    /// Copies the text, replacing each scalar for which `replacement` returns a string.
    func replacingScalars(_ replacement: (Unicode.Scalar) -> String?) -> String {
        var result = ""
        for scalar in unicodeScalars {
            if let replaced = replacement(scalar) {
                result += replaced
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
