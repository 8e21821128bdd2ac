/// Python `str` and `dict` methods that templates call (`content.strip()`, `tool.items()`).
/// List methods are absent on purpose: Hugging Face renders in jinja2's immutable sandbox,
/// where `append` and `pop` are refused.
extension TemplateRenderer {
    static let stringMethods: Set<String> = [
        "capitalize", "count", "endswith", "find", "format", "isalnum", "isalpha", "isdigit", "islower", "isspace",
        "isupper", "join", "lower", "lstrip", "replace", "rfind", "rsplit", "rstrip", "split", "splitlines",
        "startswith", "strip", "title", "upper",
    ]

    static let dictionaryMethods: Set<String> = ["get", "items", "keys", "values"]

    func callMethod(_ name: String, on receiver: Value, _ arguments: CallArguments) throws -> Value {
        switch receiver {
        case .dictionary(let entries):
            switch name {
            case "items": return .array(entries.entries.map { .array([.string($0.key), $0.value]) })
            case "keys": return .array(entries.keys.map(Value.string))
            case "values": return .array(entries.values)
            default:
                let key = try (arguments.value(0, "key") ?? .none).requireString("get")
                return entries[key] ?? arguments.value(1, "default") ?? .none
            }
        case .string(let text):
            return try callStringMethod(name, on: text, arguments)
        default:
            throw Self.failure("'\(receiver.typeName)' object has no method '\(name)'")
        }
    }

    private func callStringMethod(_ name: String, on text: String, _ arguments: CallArguments) throws -> Value {
        func stringArgument(_ position: Int, _ label: String) throws -> String? {
            switch arguments.value(position, label) {
            case nil, .none?: nil
            case let value?: try value.requireString("str.\(name)")
            }
        }
        func maximumSplits() throws -> Int {
            try arguments.value(1, "maxsplit").map { try $0.requireInteger("str.\(name)") } ?? -1
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            return .string(text.pythonStripped(
                try stringArgument(0, "chars"), leading: name != "rstrip", trailing: name != "lstrip"))
        case "split":
            return .array(text.pythonSplit(try stringArgument(0, "sep"), maximumSplits: try maximumSplits()).map(Value.string))
        case "rsplit":
            // Splitting from the right is splitting the reversed text from the left.
            let reversed = String(String.UnicodeScalarView(text.unicodeScalars.reversed()))
            let separator = try stringArgument(0, "sep").map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
            return .array(reversed.pythonSplit(separator, maximumSplits: try maximumSplits()).reversed().map {
                .string(String(String.UnicodeScalarView($0.unicodeScalars.reversed())))
            })
        case "splitlines":
            return .array(text.pythonLines.map(Value.string))
        case "startswith", "endswith":
            let candidates: [Value] =
                switch arguments.value(0, "prefix") {
                case .array(let items)?: items
                case let single?: [single]
                case nil: []
                }
            let scalars = Array(text.unicodeScalars)
            for candidate in candidates {
                let affix = Array(try candidate.requireString("str.\(name)").unicodeScalars)
                if name == "startswith" ? scalars.starts(with: affix) : scalars.reversed().starts(with: affix.reversed()) {
                    return .bool(true)
                }
            }
            return .bool(false)
        case "replace":
            let old = try stringArgument(0, "old") ?? ""
            let new = try stringArgument(1, "new") ?? ""
            let count = try arguments.value(2, "count").map { try $0.requireInteger("str.replace") } ?? -1
            return .string(try text.pythonReplacing(old, with: new, count: count))
        case "find", "rfind", "count":
            let part = try stringArgument(0, "sub") ?? ""
            let ranges = text.scalarRanges(of: part)
            if name == "count" { return .integer(ranges.count) }
            if name == "rfind" {
                // Overlapping matches count for rfind, so search the reversed text.
                let scalars = Array(text.unicodeScalars)
                let pattern = Array(part.unicodeScalars)
                guard pattern.count <= scalars.count else { return .integer(-1) }
                let last = (0...scalars.count - pattern.count).last { scalars[$0..<$0 + pattern.count].elementsEqual(pattern) }
                return .integer(last ?? -1)
            }
            return .integer(ranges.first?.lowerBound ?? -1)
        case "join":
            let pieces = try iterate(arguments.value(0, "iterable") ?? .array([])).map { try $0.requireString("str.join") }
            return .string(try Self.joinedWithinLimit(pieces, separator: text))
        case "upper": return .string(text.uppercased())
        case "lower": return .string(text.lowercased())
        case "capitalize": return .string(text.pythonCapitalized)
        case "title": return .string(text.pythonTitle)
        case "isdigit", "isalpha", "isalnum", "isspace":
            let test: (Unicode.Scalar) -> Bool =
                switch name {
                case "isdigit": { $0.properties.numericType == .digit || $0.properties.numericType == .decimal }
                case "isalpha": { $0.properties.isAlphabetic }
                case "isalnum": { $0.properties.isAlphabetic || $0.properties.numericType != nil }
                default: { $0.isPythonWhitespace }
                }
            return .bool(!text.isEmpty && text.unicodeScalars.allSatisfy(test))
        case "islower": return .bool(text.hasCasedCharacters && text == text.lowercased())
        case "isupper": return .bool(text.hasCasedCharacters && text == text.uppercased())
        case "format":
            return .string(try formatString(text, arguments))
        default:
            throw Self.failure("'str' object has no method '\(name)'")
        }
    }

    /// Python's `str.format` for plain fields: `{}`, `{0}`, `{name}`, `{{` and `}}`.
    private func formatString(_ template: String, _ arguments: CallArguments) throws -> String {
        var result = ""
        var field: String?
        var automaticIndex = 0
        var pendingClose = false
        for scalar in template.unicodeScalars {
            if var open = field {
                if scalar == "{" && open.isEmpty {
                    result += "{"
                    field = nil
                } else if scalar == "}" {
                    let value: Value?
                    if open.isEmpty {
                        value = arguments.positional.indices.contains(automaticIndex) ? arguments.positional[automaticIndex] : nil
                        automaticIndex += 1
                    } else if let position = Int(open) {
                        value = arguments.positional.indices.contains(position) ? arguments.positional[position] : nil
                    } else {
                        value = arguments.keywords[open]
                    }
                    guard let value else { throw Self.failure("str.format has no argument for field '{\(open)}'") }
                    result += value.pythonString
                    guard result.utf8.count <= Self.maximumLength else {
                        throw Self.failure("formatted string is too long")
                    }
                    field = nil
                } else {
                    guard scalar != ":" && scalar != "!" && scalar != "." && scalar != "[" else {
                        throw Self.failure("str.format conversions and format specs are not supported")
                    }
                    open.unicodeScalars.append(scalar)
                    field = open
                }
            } else if pendingClose {
                guard scalar == "}" else { throw Self.failure("single '}' encountered in format string") }
                result += "}"
                pendingClose = false
            } else if scalar == "{" {
                field = ""
            } else if scalar == "}" {
                pendingClose = true
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        guard field == nil && !pendingClose else { throw Self.failure("unbalanced braces in format string") }
        return result
    }
}

extension String {
    /// Python's `strip` / `lstrip` / `rstrip`: whitespace, or any of `characters`.
    func pythonStripped(_ characters: String?, leading: Bool, trailing: Bool) -> String {
        let strippable: (Unicode.Scalar) -> Bool =
            characters.map { set in { set.unicodeScalars.contains($0) } } ?? { $0.isPythonWhitespace }
        var scalars = Substring(self).unicodeScalars[...]
        if leading { scalars = scalars.drop(while: strippable) }
        if trailing {
            while let last = scalars.last, strippable(last) { scalars = scalars.dropLast() }
        }
        return String(String.UnicodeScalarView(scalars))
    }

    /// Python's `split(sep, maxsplit)`; with no separator, splits on whitespace runs and drops
    /// empty pieces.
    func pythonSplit(_ separator: String?, maximumSplits: Int) -> [String] {
        let limit = maximumSplits < 0 ? Int.max : maximumSplits
        let scalars = Array(unicodeScalars)
        func piece(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(scalars[range])) }
        guard let separator, !separator.isEmpty else {
            var pieces: [String] = []
            var index = 0
            while true {
                while index < scalars.count && scalars[index].isPythonWhitespace { index += 1 }
                guard index < scalars.count else { return pieces }
                if pieces.count == limit {
                    var end = scalars.count
                    while end > index && scalars[end - 1].isPythonWhitespace { end -= 1 }
                    return pieces + [piece(index..<end)]
                }
                let start = index
                while index < scalars.count && !scalars[index].isPythonWhitespace { index += 1 }
                pieces.append(piece(start..<index))
            }
        }
        var pieces: [String] = []
        var start = 0
        for range in scalarRanges(of: separator, limit: limit) {
            pieces.append(piece(start..<range.lowerBound))
            start = range.upperBound
        }
        return pieces + [piece(start..<scalars.count)]
    }

    /// Python's `replace(old, new, count)`.
    /// Fails rather than build a string longer than `TemplateRenderer.maximumLength`.
    func pythonReplacing(_ old: String, with new: String, count: Int) throws -> String {
        let scalars = Array(unicodeScalars)
        let ranges = scalarRanges(of: old, limit: count < 0 ? .max : count)
        let growth = new.unicodeScalars.count - old.unicodeScalars.count
        guard ranges.isEmpty || growth <= 0 || growth <= (TemplateRenderer.maximumLength - scalars.count) / ranges.count else {
            throw TemplateRenderer.failure("replaced string is too long (more than \(TemplateRenderer.maximumLength) characters)")
        }
        var result = String.UnicodeScalarView()
        var start = 0
        for range in ranges {
            result.append(contentsOf: scalars[start..<range.lowerBound])
            result.append(contentsOf: new.unicodeScalars)
            if range.isEmpty && range.lowerBound < scalars.count {
                // An empty pattern matches between characters: keep the character it precedes.
                result.append(scalars[range.lowerBound])
                start = range.lowerBound + 1
            } else {
                start = range.upperBound
            }
        }
        if start < scalars.count { result.append(contentsOf: scalars[start...]) }
        return String(result)
    }

    /// Python's `splitlines()`: every Unicode line boundary, `\r\n` counted once, no empty
    /// last line.
    var pythonLines: [String] {
        var lines: [String] = []
        var line = String.UnicodeScalarView()
        var previousWasReturn = false
        for scalar in unicodeScalars {
            if scalar == "\n" && previousWasReturn {
                previousWasReturn = false
                continue
            }
            previousWasReturn = scalar == "\r"
            switch scalar.value {
            case 0x0A...0x0D, 0x1C...0x1E, 0x85, 0x2028, 0x2029:
                lines.append(String(line))
                line = String.UnicodeScalarView()
            default:
                line.append(scalar)
            }
        }
        if !line.isEmpty { lines.append(String(line)) }
        return lines
    }

    /// Python's `str.capitalize()`: first character title-cased, the rest lowercased.
    var pythonCapitalized: String {
        guard let first = unicodeScalars.first else { return self }
        return first.properties.titlecaseMapping + String(String.UnicodeScalarView(unicodeScalars.dropFirst())).lowercased()
    }

    /// jinja2's per-word rule in `title`: first character `upper()`, the rest lowercased.
    var pythonCapitalizedUpper: String {
        guard let first = unicodeScalars.first else { return self }
        return first.properties.uppercaseMapping + String(String.UnicodeScalarView(unicodeScalars.dropFirst())).lowercased()
    }

    /// Python's `str.title()`: a cased character after another cased one is lowercased, any
    /// other is title-cased.
    var pythonTitle: String {
        var result = ""
        var previousCased = false
        for scalar in unicodeScalars {
            let cased = scalar.properties.isCased
            if cased {
                result += previousCased ? scalar.properties.lowercaseMapping : scalar.properties.titlecaseMapping
            } else {
                result.unicodeScalars.append(scalar)
            }
            previousCased = cased
        }
        return result
    }

    var hasCasedCharacters: Bool { unicodeScalars.contains { $0.properties.isCased } }

    var replacingUnderscores: String { String(String.UnicodeScalarView(unicodeScalars.filter { $0 != "_" })) }
}
