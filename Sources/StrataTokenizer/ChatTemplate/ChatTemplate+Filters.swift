/// jinja2's built-in filters and tests that chat templates use, plus Hugging Face's `tojson`.
extension TemplateRenderer {
    /// Every filter `applyFilter` knows; the parser rejects any other name up front, as
    /// jinja2 does when it compiles a template.
    static let filterNames: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
        "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
        "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum",
        "title", "tojson", "trim", "unique", "upper", "wordcount",
    ]

    static let testNames: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
        "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined",
        "upper", "==", "!=", "<", "<=", ">", ">=",
    ]

    func applyFilter(_ name: String, to value: Value, _ arguments: CallArguments) throws -> Value {
        switch name {
        case "trim":
            let characters = try arguments.value(0, "chars").flatMap(optionalString)
            return .string(value.pythonString.pythonStripped(characters, leading: true, trailing: true))
        case "length", "count":
            return .integer(try length(of: value))
        case "tojson":
            return .string(try formatJSON(value, style: try jsonStyle(arguments)))
        case "upper":
            return .string(value.pythonString.uppercased())
        case "lower":
            return .string(value.pythonString.lowercased())
        case "capitalize":
            return .string(value.pythonString.pythonCapitalized)
        case "title":
            return .string(Self.titleCase(value.pythonString))
        case "string", "safe":
            return .string(value.pythonString)
        case "escape", "e":
            return .string(Self.escapeHTML(value.pythonString))
        case "default", "d":
            let fallback = arguments.value(0, "default_value") ?? .string("")
            let onFalsy = arguments.value(1, "boolean")?.isTruthy ?? false
            return value.isUndefined || (onFalsy && !value.isTruthy) ? fallback : value
        case "first":
            return try iterate(value).first ?? .undefined(hint: "no first item, sequence was empty")
        case "last":
            return try iterate(value).last ?? .undefined(hint: "no last item, sequence was empty")
        case "list":
            return .array(try iterate(value))
        case "items":
            switch value {
            case .undefined: return .array([])
            case .dictionary(let entries): return .array(entries.entries.map { .array([.string($0.key), $0.value]) })
            default: throw Self.failure("can only get item pairs from a mapping, not '\(value.typeName)'")
            }
        case "join":
            var items = try iterate(value)
            if let path = arguments.value(1, "attribute") { items = try items.map { try attributePath(path, of: $0) } }
            let separator = arguments.value(0, "d")?.pythonString ?? ""
            return .string(try Self.joinedWithinLimit(items.map(\.pythonString), separator: separator))
        case "replace":
            let old = try (arguments.value(0, "old") ?? .string("")).requireString("replace")
            let new = try (arguments.value(1, "new") ?? .string("")).requireString("replace")
            let count = try arguments.value(2, "count").map { try $0.requireInteger("replace") } ?? -1
            return .string(try value.pythonString.pythonReplacing(old, with: new, count: count))
        case "select", "reject", "selectattr", "rejectattr":
            return .array(try select(value, arguments, keeping: name.hasPrefix("select"), byAttribute: name.hasSuffix("attr")))
        case "map":
            return .array(try map(value, arguments))
        case "unique":
            let items = try iterate(value)
            let keys = try sortKeys(items, arguments, caseSensitiveAt: 0, attributeAt: 1)
            var kept: [Value] = []
            var seen: [Value] = []
            for (item, key) in zip(items, keys) where !seen.contains(where: { $0.pythonEquals(key) }) {
                seen.append(key)
                kept.append(item)
            }
            return .array(kept)
        case "reverse":
            if case .string(let text) = value { return .string(String(String.UnicodeScalarView(text.unicodeScalars.reversed()))) }
            return .array(try iterate(value).reversed())
        case "sort":
            let items = try iterate(value)
            let keys = try sortKeys(items, arguments, caseSensitiveAt: 1, attributeAt: 2)
            let descending = arguments.value(0, "reverse")?.isTruthy ?? false
            return .array(try stableOrder(keys, descending: descending).map { items[$0] })
        case "dictsort":
            guard case .dictionary(let entries) = value else { throw Self.failure("dictsort expects a mapping") }
            let pairs = entries.entries.map { Value.array([.string($0.key), $0.value]) }
            let byValue = arguments.value(1, "by")?.pythonString == "value"
            var keys = entries.entries.map { byValue ? $0.value : .string($0.key) }
            if !(arguments.value(0, "case_sensitive")?.isTruthy ?? false) { keys = keys.map(Self.foldCase) }
            let descending = arguments.value(2, "reverse")?.isTruthy ?? false
            return .array(try stableOrder(keys, descending: descending).map { pairs[$0] })
        case "min", "max":
            let items = try iterate(value)
            let keys = try sortKeys(items, arguments, caseSensitiveAt: 0, attributeAt: 1)
            guard let chosen = try stableOrder(keys, descending: name == "max").first else {
                return .undefined(hint: "no \(name) item, sequence was empty")
            }
            return items[chosen]
        case "sum":
            var items = try iterate(value)
            if let path = arguments.value(0, "attribute") { items = try items.map { try attributePath(path, of: $0) } }
            return try items.reduce(arguments.value(1, "start") ?? .integer(0)) { try arithmetic(.add, $0, $1) }
        case "int":
            return Self.integerValue(value) ?? arguments.value(0, "default") ?? .integer(0)
        case "float":
            return Self.floatValue(value).map(Value.double) ?? arguments.value(0, "default") ?? .double(0)
        case "abs":
            guard let number = value.numericValue else { throw Self.failure("bad operand type for abs(): '\(value.typeName)'") }
            switch number {
            case .integer(let integer): return .integer(abs(integer))
            case .double(let double): return .double(abs(double))
            }
        case "round":
            return try round(value, arguments)
        case "indent":
            return .string(try indent(value.pythonString, arguments))
        case "wordcount":
            return .integer(value.pythonString.split { !$0.isLetter && !$0.isNumber && $0 != "_" }.count)
        case "attr":
            return try attribute(try (arguments.value(0, "name") ?? .none).requireString("attr"), of: value)
        default:
            throw Self.failure("unknown filter '\(name)'")
        }
    }

    func applyTest(_ name: String, to value: Value, _ arguments: CallArguments) throws -> Bool {
        guard Self.testNames.contains(name) else { throw Self.failure("unknown test '\(name)'") }
        let other = arguments.value(0, "value") ?? .undefined(hint: "test '\(name)' needs an argument")
        switch (name, value) {
        case ("defined", _): return !value.isUndefined
        case ("undefined", _): return value.isUndefined
        case ("none", .none): return true
        case ("boolean", .bool), ("integer", .integer), ("float", .double), ("string", .string), ("mapping", .dictionary):
            return true
        case ("true", .bool(let flag)): return flag
        case ("false", .bool(let flag)): return !flag
        case ("number", _): return value.numericValue != nil
        case ("iterable", .undefined), ("iterable", .string), ("iterable", .array), ("iterable", .dictionary),
            ("sequence", .undefined), ("sequence", .string), ("sequence", .array), ("sequence", .dictionary):
            return true
        case ("callable", .macro), ("callable", .builtin), ("callable", .method): return true
        case ("odd", _): return try value.requireInteger("odd") & 1 == 1
        case ("even", _): return try value.requireInteger("even") & 1 == 0
        case ("divisibleby", _):
            let divisor = try other.requireInteger("divisibleby")
            let dividend = try value.requireInteger("divisibleby")
            return divisor != 0 && dividend % divisor == 0
        case ("eq", _), ("equalto", _), ("==", _): return try compare(.equal, value, other)
        case ("ne", _), ("!=", _): return try compare(.notEqual, value, other)
        case ("lt", _), ("lessthan", _), ("<", _): return try compare(.less, value, other)
        case ("le", _), ("<=", _): return try compare(.lessOrEqual, value, other)
        case ("gt", _), ("greaterthan", _), (">", _): return try compare(.greater, value, other)
        case ("ge", _), (">=", _): return try compare(.greaterOrEqual, value, other)
        case ("in", _): return try contains(other, value)
        case ("sameas", _): return value.typeName == other.typeName && value.pythonEquals(other)
        case ("lower", .string(let text)): return text.hasCasedCharacters && text == text.lowercased()
        case ("upper", .string(let text)): return text.hasCasedCharacters && text == text.uppercased()
        case ("filter", .string(let filter)): return Self.filterNames.contains(filter)
        case ("test", .string(let test)): return Self.testNames.contains(test)
        default: return false
        }
    }

    // MARK: - Helpers

    private func optionalString(_ value: Value) throws -> String? {
        if case .none = value { return nil }
        return try value.requireString("chars")
    }

    func length(of value: Value) throws -> Int {
        switch value {
        case .undefined: 0
        case .string(let text): text.unicodeScalars.count
        case .array(let items): items.count
        case .dictionary(let entries): entries.count
        default: throw Self.failure("object of type '\(value.typeName)' has no len()")
        }
    }

    /// Follows `"a.b.0"` through items, as jinja2's attribute getters for `map`, `sort`,
    /// `selectattr` and `join` do.
    private func attributePath(_ path: Value, of value: Value) throws -> Value {
        guard case .string(let dotted) = path else { return try item(path, of: value) }
        var current = value
        for part in dotted.split(separator: ".", omittingEmptySubsequences: false) {
            let key: Value = Int(part).map(Value.integer) ?? .string(String(part))
            current = try item(key, of: current)
        }
        return current
    }

    private func select(_ value: Value, _ arguments: CallArguments, keeping: Bool, byAttribute: Bool) throws -> [Value] {
        // jinja2 yields nothing for a falsy sequence (none included) instead of failing.
        guard value.isTruthy else { return [] }
        var rest = arguments.positional
        var path: Value?
        if byAttribute {
            guard !rest.isEmpty else { throw Self.failure("selectattr and rejectattr need an attribute name") }
            path = rest.removeFirst()
        }
        let testName = rest.isEmpty ? nil : try rest.removeFirst().requireString("test name")
        if let testName, !Self.testNames.contains(testName) { throw Self.failure("unknown test '\(testName)'") }
        let testArguments = CallArguments(positional: rest, keywords: arguments.keywords)
        return try iterate(value).filter { item in
            let subject = try path.map { try attributePath($0, of: item) } ?? item
            let passed = try testName.map { try applyTest($0, to: subject, testArguments) } ?? subject.isTruthy
            return passed == keeping
        }
    }

    private func map(_ value: Value, _ arguments: CallArguments) throws -> [Value] {
        guard value.isTruthy else { return [] }
        let items = try iterate(value)
        if let path = arguments.keywords["attribute"] {
            let fallback = arguments.keywords["default"]
            return try items.map { item in
                let found = try attributePath(path, of: item)
                return found.isUndefined ? fallback ?? found : found
            }
        }
        guard let filter = arguments.positional.first else { throw Self.failure("map needs a filter name or attribute=") }
        let filterName = try filter.requireString("map")
        guard Self.filterNames.contains(filterName) else { throw Self.failure("unknown filter '\(filterName)'") }
        let rest = CallArguments(positional: Array(arguments.positional.dropFirst()), keywords: arguments.keywords)
        return try items.map { try applyFilter(filterName, to: $0, rest) }
    }

    private static func foldCase(_ value: Value) -> Value {
        if case .string(let text) = value { return .string(text.lowercased()) }
        return value
    }

    /// The keys `sort`, `unique`, `min` and `max` compare: an attribute of each item if asked
    /// for, lowercased unless `case_sensitive`.
    private func sortKeys(
        _ items: [Value], _ arguments: CallArguments, caseSensitiveAt: Int, attributeAt: Int
    ) throws -> [Value] {
        let caseSensitive = arguments.value(caseSensitiveAt, "case_sensitive")?.isTruthy ?? false
        let path = arguments.value(attributeAt, "attribute")
        return try items.map { item in
            let key = try path.map { try attributePath($0, of: item) } ?? item
            return caseSensitive ? key : Self.foldCase(key)
        }
    }

    /// Indices of `keys` in sorted order; equal keys keep their input order, like Python's
    /// stable sort (also when reversed).
    private func stableOrder(_ keys: [Value], descending: Bool) throws -> [Int] {
        try keys.indices.sorted { a, b in
            let (first, second) = descending ? (keys[b], keys[a]) : (keys[a], keys[b])
            guard let less = first.pythonLess(than: second) else {
                throw Self.failure("cannot sort '\(keys[a].typeName)' and '\(keys[b].typeName)'")
            }
            if less { return true }
            return !(second.pythonLess(than: first) ?? false) && a < b
        }
    }

    private func jsonStyle(_ arguments: CallArguments) throws -> JSONStyle {
        var indent: String?
        switch arguments.value(1, "indent") {
        case .integer(let width)?: indent = String(repeating: " ", count: max(width, 0))
        case .string(let text)?: indent = text
        default: break
        }
        var separators: (String, String)?
        if case .array(let pair)? = arguments.value(2, "separators"), pair.count == 2 {
            separators = (try pair[0].requireString("separators"), try pair[1].requireString("separators"))
        }
        return JSONStyle(
            indent: indent, separators: separators,
            sortKeys: arguments.value(3, "sort_keys")?.isTruthy ?? false,
            asciiOnly: arguments.value(0, "ensure_ascii")?.isTruthy ?? false)
    }

    private static func integerValue(_ value: Value) -> Value? {
        switch value {
        case .bool(let flag): return .integer(flag ? 1 : 0)
        case .integer: return value
        case .double(let number):
            return number.isFinite && abs(number) < 9.2e18 ? .integer(Int(number)) : nil
        case .string(let text):
            let trimmed = text.pythonStripped(nil, leading: true, trailing: true).replacingUnderscores
            if let number = Int(trimmed) { return .integer(number) }
            return floatValue(value).flatMap { integerValue(.double($0)) }
        default: return nil
        }
    }

    private static func floatValue(_ value: Value) -> Double? {
        switch value {
        case .bool(let flag): flag ? 1 : 0
        case .integer(let number): Double(number)
        case .double(let number): number
        case .string(let text): Double(text.pythonStripped(nil, leading: true, trailing: true).replacingUnderscores)
        default: nil
        }
    }

    private func round(_ value: Value, _ arguments: CallArguments) throws -> Value {
        guard let number = value.numericValue?.asDouble else { throw Self.failure("round expects a number") }
        let precision = try arguments.value(0, "precision").map { try $0.requireInteger("round") } ?? 0
        let method = arguments.value(1, "method")?.pythonString ?? "common"
        let rule: FloatingPointRoundingRule =
            switch method {
            case "ceil": .up
            case "floor": .down
            case "common": .toNearestOrEven
            default: throw Self.failure("round method must be 'common', 'ceil' or 'floor'")
            }
        var scale = 1.0
        for _ in 0..<abs(precision) { scale *= 10 }
        let rounded = precision >= 0 ? (number * scale).rounded(rule) / scale : (number / scale).rounded(rule) * scale
        return .double(rounded)
    }

    /// jinja2's `indent(width=4, first=False, blank=False)`.
    private func indent(_ text: String, _ arguments: CallArguments) throws -> String {
        let indentation: String =
            switch arguments.value(0, "width") {
            case .string(let custom)?: custom
            case let width?: String(repeating: " ", count: max(try width.requireInteger("indent"), 0))
            case nil: "    "
            }
        let indentFirst = arguments.value(1, "first")?.isTruthy ?? false
        let indentBlank = arguments.value(2, "blank")?.isTruthy ?? false
        // jinja2 appends a newline before splitting so a trailing newline survives.
        var lines = (text + "\n").pythonLines
        var result: String
        if indentBlank {
            result = lines.joined(separator: "\n" + indentation)
        } else {
            result = lines.removeFirst()
            if !lines.isEmpty {
                result += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
            }
        }
        return indentFirst ? indentation + result : result
    }

    /// jinja2's `title`: each word (split at spaces, `-`, and opening brackets) gets its first
    /// character uppercased and the rest lowercased.
    private static func titleCase(_ text: String) -> String {
        var result = ""
        var word = ""
        func flush() {
            result += word.pythonCapitalizedUpper
            word = ""
        }
        for scalar in text.unicodeScalars {
            if scalar.isPythonWhitespace || "-({[<".unicodeScalars.contains(scalar) {
                flush()
                result.unicodeScalars.append(scalar)
            } else {
                word.unicodeScalars.append(scalar)
            }
        }
        flush()
        return result
    }

    private static func escapeHTML(_ text: String) -> String {
        text.replacingScalars { scalar in
            switch scalar {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&#34;"
            case "'": "&#39;"
            default: nil
            }
        }
    }
}
