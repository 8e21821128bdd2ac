/// Runtime values of the template interpreter, with Python's semantics for truthiness,
/// equality, `str()` and `repr()`, since that is what jinja2 renders with.

/// A dictionary that remembers insertion order, like a Python dict.
struct OrderedDictionary {
    private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    init() {}

    init(_ entries: [(key: String, value: Value)]) {
        for (key, value) in entries { self[key] = value }
    }

    var count: Int { keys.count }
    var entries: [(key: String, value: Value)] { keys.map { ($0, storage[$0]!) } }
    var values: [Value] { keys.map { storage[$0]! } }

    subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if storage[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            storage[key] = newValue
        }
    }
}

/// `namespace()` objects are the one mutable thing in a template: assignments to their
/// attributes escape loop scopes, which is why templates use them.
final class Namespace {
    var attributes: OrderedDictionary
    init(_ attributes: OrderedDictionary) { self.attributes = attributes }
}

/// Functions a template can call by name.
enum BuiltinFunction: String {
    case raiseException = "raise_exception"
    case namespace
    case range
    case dictionary = "dict"
}

enum Value {
    /// jinja2's `Undefined`: falsy, renders empty, iterates as empty, fails on arithmetic and
    /// attribute access. The hint explains where it came from for such failures.
    case undefined(hint: String)
    case none
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case array([Value])
    case dictionary(OrderedDictionary)
    case namespace(Namespace)
    case macro(MacroDefinition)
    case builtin(BuiltinFunction)
    /// A method looked up on a value (`text.strip`), waiting to be called.
    indirect case method(receiver: Value, name: String)

    init(_ value: TemplateValue) {
        switch value {
        case .none: self = .none
        case .bool(let flag): self = .bool(flag)
        case .integer(let number): self = .integer(number)
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .array(items.map(Value.init))
        case .dictionary(let entries): self = .dictionary(OrderedDictionary(entries.map { ($0.key, Value($0.value)) }))
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { true } else { false }
    }

    var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let flag): flag
        case .integer(let number): number != 0
        case .double(let number): number != 0
        case .string(let text): !text.isEmpty
        case .array(let items): !items.isEmpty
        case .dictionary(let entries): entries.count > 0
        case .namespace, .macro, .builtin, .method: true
        }
    }

    /// Python's type name, for error messages that match jinja2's.
    var typeName: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .integer: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .dictionary: "dict"
        case .namespace: "Namespace"
        case .macro: "Macro"
        case .builtin, .method: "builtin_function_or_method"
        }
    }

    /// Python's `str()`: what `{{ value }}`, `~` and `|string` produce.
    var pythonString: String {
        switch self {
        case .undefined: ""
        case .string(let text): text
        default: pythonRepresentation
        }
    }

    /// Python's `repr()`, used for strings nested inside printed lists and dicts.
    var pythonRepresentation: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let flag): flag ? "True" : "False"
        case .integer(let number): String(number)
        case .double(let number): formatPythonFloat(number)
        case .string(let text): quotePythonString(text)
        case .array(let items): "[" + items.map(\.pythonRepresentation).joined(separator: ", ") + "]"
        case .dictionary(let entries):
            "{" + entries.entries.map { quotePythonString($0.key) + ": " + $0.value.pythonRepresentation }
                .joined(separator: ", ") + "}"
        case .namespace(let namespace):
            "<Namespace " + namespace.attributes.entries.map { "\($0.key)=\($0.value.pythonRepresentation)" }
                .joined(separator: ", ") + ">"
        case .macro(let macro): "<Macro '\(macro.name)'>"
        case .builtin(let function): "<built-in function \(function.rawValue)>"
        case .method(let receiver, let name): "<built-in method \(name) of \(receiver.typeName) object>"
        }
    }

    /// Python's `==`: numbers compare across int/float/bool, containers compare deeply,
    /// strings compare by code points (not by Swift's canonical equivalence).
    func pythonEquals(_ other: Value) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.array(a), .array(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.pythonEquals($1) }
        case let (.dictionary(a), .dictionary(b)):
            return a.count == b.count
                && a.entries.allSatisfy { entry in b[entry.key].map { entry.value.pythonEquals($0) } ?? false }
        case let (.namespace(a), .namespace(b)): return a === b
        default:
            if let a = numericValue, let b = other.numericValue { return a == b }
            return false
        }
    }

    /// Numbers (bools count, as in Python) as a comparable pair: exact integer or double.
    var numericValue: Number? {
        switch self {
        case .bool(let flag): .integer(flag ? 1 : 0)
        case .integer(let number): .integer(number)
        case .double(let number): .double(number)
        default: nil
        }
    }

    /// Python's `<`, or nil when the types cannot be ordered.
    func pythonLess(than other: Value) -> Bool? {
        if let a = numericValue, let b = other.numericValue { return a < b }
        switch (self, other) {
        case let (.string(a), .string(b)):
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        case let (.array(a), .array(b)):
            for (left, right) in zip(a, b) where !left.pythonEquals(right) { return left.pythonLess(than: right) }
            return a.count < b.count
        default:
            return nil
        }
    }
}

enum Number: Comparable {
    case integer(Int)
    case double(Double)

    var asDouble: Double {
        switch self {
        case .integer(let number): Double(number)
        case .double(let number): number
        }
    }

    static func == (lhs: Number, rhs: Number) -> Bool {
        if case .integer(let a) = lhs, case .integer(let b) = rhs { return a == b }
        return lhs.asDouble == rhs.asDouble
    }

    static func < (lhs: Number, rhs: Number) -> Bool {
        if case .integer(let a) = lhs, case .integer(let b) = rhs { return a < b }
        return lhs.asDouble < rhs.asDouble
    }
}

/// Python's `repr(float)`: the shortest round-tripping digits (which Swift also produces),
/// laid out in positional notation for exponents -5 < e < 16, else as `1e+16` / `1.5e-07`.
func formatPythonFloat(_ number: Double) -> String {
    if number.isNaN { return "nan" }
    if number.isInfinite { return number < 0 ? "-inf" : "inf" }
    if number == 0 { return number.sign == .minus ? "-0.0" : "0.0" }
    var text = "\(number.magnitude)"
    var exponent = 0
    if let marker = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: marker)...]) ?? 0
        text = String(text[..<marker])
    }
    // Collect the significant digits and where the decimal point falls among them.
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    var digits = String(parts[0]) + (parts.count > 1 ? String(parts[1]) : "")
    var pointPosition = parts[0].count + exponent
    while digits.count > 1 && digits.first == "0" {
        digits.removeFirst()
        pointPosition -= 1
    }
    while digits.count > 1 && digits.last == "0" { digits.removeLast() }
    let decimalExponent = pointPosition - 1
    let sign = number < 0 ? "-" : ""
    if decimalExponent < -4 || decimalExponent >= 16 {
        var mantissa = String(digits.first!)
        if digits.count > 1 { mantissa += "." + digits.dropFirst() }
        let exponentDigits = String(abs(decimalExponent))
        return sign + mantissa + "e" + (decimalExponent < 0 ? "-" : "+")
            + (exponentDigits.count < 2 ? "0" : "") + exponentDigits
    }
    if pointPosition <= 0 {
        return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
    }
    if pointPosition >= digits.count {
        return sign + digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
    }
    let split = digits.index(digits.startIndex, offsetBy: pointPosition)
    return sign + digits[..<split] + "." + digits[split...]
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double
/// quote; backslash escapes for the quote, backslash and non-printable characters.
func quotePythonString(_ text: String) -> String {
    let hasSingle = text.unicodeScalars.contains("'")
    let quote: Unicode.Scalar = hasSingle && !text.unicodeScalars.contains("\"") ? "\"" : "'"
    let escaped = text.replacingScalars { scalar in
        switch scalar {
        case quote, "\\": return "\\" + String(scalar)
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            guard !scalar.isPythonPrintable else { return nil }
            let hex = String(scalar.value, radix: 16)
            let (prefix, width) = scalar.value <= 0xFF ? ("\\x", 2) : scalar.value <= 0xFFFF ? ("\\u", 4) : ("\\U", 8)
            return prefix + String(repeating: "0", count: width - hex.count) + hex
        }
    }
    return String(quote) + escaped + String(quote)
}

extension Unicode.Scalar {
    /// Python's `str.isprintable()` for one character.
    var isPythonPrintable: Bool {
        if self == " " { return true }
        switch properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default:
            return true
        }
    }
}

// MARK: - Nesting limits

extension TemplateRenderer {
    /// Deepest a template may nest the lists, dicts and namespaces it builds. Swift walks
    /// (and releases) nested values recursively, so `{% set ns.x = [ns.x] %}` repeated in a
    /// loop would otherwise overflow the stack; real templates nest tool schemas and
    /// messages about ten levels deep.
    static let maximumValueDepth = 256

    /// Fails unless a new container holding `children` stays within `maximumValueDepth`.
    /// Only code that wraps values in a new container calls this; everything else returns
    /// parts of values it was given, or strings.
    ///
    /// A namespace may not hold another namespace (even inside a list): namespaces are the
    /// one shared, mutable value, so that would allow cycles and chains that grow after
    /// this check. No real template does it.
    static func checkNesting(of children: [Value], insideNamespace: Bool = false) throws {
        // Values share storage, so `[x, x]` doubled in a loop is small in memory but
        // exponentially large to walk; the walk gives up after a million values (all the
        // messages and tools of a long conversation are a few tens of thousands).
        var visitsLeft = 1_000_000
        for child in children {
            try checkNesting(child, levelsLeft: maximumValueDepth - 1, visitsLeft: &visitsLeft, insideNamespace)
        }
    }

    /// Fails unless `value` is at most `levelsLeft` containers deep.
    private static func checkNesting(
        _ value: Value, levelsLeft: Int, visitsLeft: inout Int, _ insideNamespace: Bool
    ) throws {
        visitsLeft -= 1
        guard visitsLeft >= 0 else { throw failure("value is too large to nest in another") }
        let children: [Value]
        switch value {
        case .array(let items): children = items
        case .dictionary(let entries): children = entries.values
        case .namespace(let namespace):
            guard !insideNamespace else { throw failure("a namespace cannot be stored inside a namespace") }
            children = namespace.attributes.values
        case .method(let receiver, _): children = [receiver]
        default: return
        }
        guard levelsLeft > 0 else {
            throw failure("value nests too deeply (more than \(maximumValueDepth) levels)")
        }
        for child in children {
            try checkNesting(child, levelsLeft: levelsLeft - 1, visitsLeft: &visitsLeft, insideNamespace)
        }
    }
}
