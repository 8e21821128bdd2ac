/// A place in the (newline-normalised) template source, for error messages.
struct SourcePosition: Sendable, Equatable {
    var line: Int
    var column: Int
}

enum TokenKind: Sendable, Equatable {
    case text(String)
    case variableBegin, variableEnd, blockBegin, blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case double(Double)
    case symbol(String)
    case end
}

struct Token: Sendable {
    var kind: TokenKind
    var position: SourcePosition
}

/// Splits template source into text and tag tokens, applying jinja2's whitespace rules as
/// Hugging Face configures them: `-` strips all whitespace on its side, `trim_blocks` drops the
/// first newline after a block or comment tag, `lstrip_blocks` drops spaces and tabs before a
/// block or comment tag that starts a line, and `+` disables the latter two.
struct TemplateLexer {
    private enum TagKind { case variable, block, comment }

    private let scalars: [Unicode.Scalar]
    private let lineStarts: [Int]
    private var index = 0
    private var tokens: [Token] = []
    /// Whether the text that follows begins a line; jinja2 tracks this so `lstrip_blocks` also
    /// applies right after a tag whose trimmed newline ended the previous line.
    private var lineStarting = true

    init(source: String) {
        // jinja2 turns \r\n and \r into \n and, without keep_trailing_newline, drops one
        // trailing newline.
        var normalized: [Unicode.Scalar] = []
        normalized.reserveCapacity(source.unicodeScalars.count)
        var previousWasReturn = false
        for scalar in source.unicodeScalars {
            if scalar == "\n" && previousWasReturn {
                previousWasReturn = false
                continue
            }
            previousWasReturn = scalar == "\r"
            normalized.append(previousWasReturn ? "\n" : scalar)
        }
        if normalized.last == "\n" { normalized.removeLast() }
        scalars = normalized
        var starts = [0]
        for (offset, scalar) in normalized.enumerated() where scalar == "\n" { starts.append(offset + 1) }
        lineStarts = starts
    }

    mutating func tokenize() throws -> [Token] {
        while index < scalars.count {
            guard let (kind, start) = nextTagStart() else {
                emitText(from: index, to: scalars.count)
                break
            }
            var textEnd = start
            var contentStart = start + 2
            let sign = contentStart < scalars.count ? scalars[contentStart] : nil
            if sign == "-" || sign == "+" { contentStart += 1 }
            if sign == "-" {
                while textEnd > index && scalars[textEnd - 1].isPythonWhitespace { textEnd -= 1 }
            } else if sign != "+" && kind != .variable {
                textEnd = lineStrippedEnd(textStart: index, tagStart: start)
            }
            emitText(from: index, to: textEnd)
            index = contentStart
            lineStarting = false
            switch kind {
            case .comment:
                try skipComment(openedAt: start)
            case .variable:
                tokens.append(Token(kind: .variableBegin, position: position(of: start)))
                try lexTagContents(kind: .variable, openedAt: start)
            case .block:
                tokens.append(Token(kind: .blockBegin, position: position(of: start)))
                try lexTagContents(kind: .block, openedAt: start)
            }
        }
        tokens.append(Token(kind: .end, position: position(of: scalars.count)))
        return tokens
    }

    func position(of offset: Int) -> SourcePosition {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return SourcePosition(line: low + 1, column: offset - lineStarts[low] + 1)
    }

    private func error(_ message: String, at offset: Int) -> ChatTemplateError {
        let place = position(of: offset)
        return ChatTemplateError(kind: .syntax, message: message, line: place.line, column: place.column)
    }

    private func matches(_ literal: String, at offset: Int) -> Bool {
        var cursor = offset
        for scalar in literal.unicodeScalars {
            guard cursor < scalars.count, scalars[cursor] == scalar else { return false }
            cursor += 1
        }
        return true
    }

    private func nextTagStart() -> (TagKind, Int)? {
        var cursor = index
        while cursor + 1 < scalars.count {
            if scalars[cursor] == "{" {
                switch scalars[cursor + 1] {
                case "{": return (.variable, cursor)
                case "%": return (.block, cursor)
                case "#": return (.comment, cursor)
                default: break
                }
            }
            cursor += 1
        }
        return nil
    }

    /// Where the text before a block tag ends once `lstrip_blocks` has removed the
    /// indentation of a tag that is alone at the start of its line.
    private func lineStrippedEnd(textStart: Int, tagStart: Int) -> Int {
        var lineStart = tagStart
        while lineStart > textStart && scalars[lineStart - 1] != "\n" { lineStart -= 1 }
        guard lineStart > textStart || lineStarting else { return tagStart }
        for offset in lineStart..<tagStart where !scalars[offset].isPythonWhitespace { return tagStart }
        return lineStart
    }

    private mutating func emitText(from start: Int, to end: Int) {
        guard start < end else { return }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars[start..<end])
        tokens.append(Token(kind: .text(String(text)), position: position(of: start)))
    }

    /// Consumes the end of a tag (`%}`, `-%}`, `+%}`, `}}`, `-}}`, `#}`, ...) if it starts at
    /// `index`, applying trim rules to what follows.
    private mutating func consumeTagEnd(_ closer: String, trims: Bool) -> Bool {
        if trims && matches("+" + closer, at: index) {
            index += 3
        } else if matches("-" + closer, at: index) {
            index += 3
            while index < scalars.count && scalars[index].isPythonWhitespace { index += 1 }
        } else if matches(closer, at: index) {
            index += 2
            if trims && index < scalars.count && scalars[index] == "\n" { index += 1 }
        } else {
            return false
        }
        lineStarting = scalars[index - 1] == "\n"
        return true
    }

    private mutating func skipComment(openedAt start: Int) throws {
        while index < scalars.count {
            if consumeTagEnd("#}", trims: true) { return }
            index += 1
        }
        throw error("missing end of comment tag '#}'", at: start)
    }

    private mutating func lexTagContents(kind: TagKind, openedAt start: Int) throws {
        let closer = kind == .block ? "%}" : "}}"
        var brackets: [(closer: Unicode.Scalar, offset: Int)] = []
        while true {
            guard index < scalars.count else {
                if let open = brackets.last { throw error("unclosed '\(open.closer == ")" ? "(" : open.closer == "]" ? "[" : "{")'", at: open.offset) }
                throw error("unexpected end of template, expected '\(closer)' to close this tag", at: start)
            }
            let tokenStart = index
            if brackets.isEmpty && consumeTagEnd(closer, trims: kind == .block) {
                tokens.append(Token(kind: kind == .block ? .blockEnd : .variableEnd, position: position(of: tokenStart)))
                return
            }
            let scalar = scalars[index]
            if scalar.isPythonWhitespace {
                index += 1
            } else if scalar.isASCIIDigit {
                tokens.append(Token(kind: try lexNumber(), position: position(of: tokenStart)))
            } else if scalar == "_" || scalar.properties.isAlphabetic {
                while index < scalars.count
                    && (scalars[index] == "_" || scalars[index].properties.isAlphabetic || scalars[index].isASCIIDigit)
                {
                    index += 1
                }
                var name = String.UnicodeScalarView()
                name.append(contentsOf: scalars[tokenStart..<index])
                tokens.append(Token(kind: .name(String(name)), position: position(of: tokenStart)))
            } else if scalar == "'" || scalar == "\"" {
                tokens.append(Token(kind: .string(try lexString()), position: position(of: tokenStart)))
            } else {
                let symbol = try lexSymbol()
                switch symbol {
                case "(": brackets.append((")", tokenStart))
                case "[": brackets.append(("]", tokenStart))
                case "{": brackets.append(("}", tokenStart))
                case ")", "]", "}":
                    guard let open = brackets.popLast() else { throw error("unexpected '\(symbol)'", at: tokenStart) }
                    guard String(open.closer) == symbol else {
                        throw error("unexpected '\(symbol)', expected '\(open.closer)'", at: tokenStart)
                    }
                default: break
                }
                tokens.append(Token(kind: .symbol(symbol), position: position(of: tokenStart)))
            }
        }
    }

    private static let twoCharacterSymbols: Set<String> = ["**", "//", "==", "!=", ">=", "<="]
    private static let oneCharacterSymbols: Set<Unicode.Scalar> = [
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private mutating func lexSymbol() throws -> String {
        if index + 1 < scalars.count {
            let pair = String(String.UnicodeScalarView([scalars[index], scalars[index + 1]]))
            if Self.twoCharacterSymbols.contains(pair) {
                index += 2
                return pair
            }
        }
        let scalar = scalars[index]
        guard Self.oneCharacterSymbols.contains(scalar) else {
            throw error("unexpected character '\(scalar)'", at: index)
        }
        index += 1
        return String(scalar)
    }

    private mutating func digitRun() -> String {
        var digits = ""
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar.isASCIIDigit {
                digits.unicodeScalars.append(scalar)
            } else if scalar == "_" && index + 1 < scalars.count && scalars[index + 1].isASCIIDigit && !digits.isEmpty {
                // Python-style digit separators
            } else {
                break
            }
            index += 1
        }
        return digits
    }

    private mutating func lexNumber() throws -> TokenKind {
        let start = index
        if scalars[index] == "0", index + 1 < scalars.count,
            let radix = ["x": 16, "X": 16, "o": 8, "O": 8, "b": 2, "B": 2][Character(scalars[index + 1])]
        {
            index += 2
            var digits = ""
            while index < scalars.count, scalars[index] == "_" || Int(String(scalars[index]), radix: radix) != nil {
                if scalars[index] != "_" { digits.unicodeScalars.append(scalars[index]) }
                index += 1
            }
            guard let value = Int(digits, radix: radix) else { throw error("invalid number literal", at: start) }
            return .integer(value)
        }
        var literal = digitRun()
        var isFloat = false
        // A float needs digits after the dot; `1.` stays an integer followed by a dot, and a
        // number right after a dot (`a.0.1`) is never a float, as in jinja2.
        let afterDot = start > 0 && scalars[start - 1] == "."
        if !afterDot, index + 1 < scalars.count, scalars[index] == ".", scalars[index + 1].isASCIIDigit {
            index += 1
            literal += "." + digitRun()
            isFloat = true
        }
        if !afterDot, index < scalars.count, scalars[index] == "e" || scalars[index] == "E" {
            let mark = index
            index += 1
            var exponent = "e"
            if index < scalars.count, scalars[index] == "+" || scalars[index] == "-" {
                exponent.unicodeScalars.append(scalars[index])
                index += 1
            }
            if index < scalars.count, scalars[index].isASCIIDigit {
                literal += exponent + digitRun()
                isFloat = true
            } else {
                index = mark
            }
        }
        if isFloat {
            guard let value = Double(literal) else { throw error("invalid number literal", at: start) }
            return .double(value)
        }
        guard let value = Int(literal) else { throw error("integer literal too large", at: start) }
        return .integer(value)
    }

    /// Reads a quoted string and decodes Python's escape sequences, as jinja2 does.
    private mutating func lexString() throws -> String {
        let start = index
        let quote = scalars[index]
        index += 1
        var result = String.UnicodeScalarView()
        while true {
            guard index < scalars.count else { throw error("unterminated string literal", at: start) }
            let scalar = scalars[index]
            index += 1
            if scalar == quote { return String(result) }
            guard scalar == "\\" else {
                result.append(scalar)
                continue
            }
            guard index < scalars.count else { throw error("unterminated string literal", at: start) }
            let escaped = scalars[index]
            index += 1
            switch escaped {
            case "\n": break
            case "\\", "'", "\"": result.append(escaped)
            case "a": result.append("\u{07}")
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "t": result.append("\t")
            case "v": result.append("\u{0B}")
            case "x", "u", "U":
                let width = escaped == "x" ? 2 : escaped == "u" ? 4 : 8
                guard index + width <= scalars.count,
                    let code = UInt32(String(String.UnicodeScalarView(scalars[index..<index + width])), radix: 16),
                    let decoded = Unicode.Scalar(code)
                else { throw error("invalid \\\(escaped) escape in string literal", at: index - 2) }
                result.append(decoded)
                index += width
            case "0"..."7":
                var code = escaped.value - 48
                var digits = 1
                while digits < 3, index < scalars.count, ("0"..."7").contains(scalars[index]) {
                    code = code * 8 + scalars[index].value - 48
                    index += 1
                    digits += 1
                }
                result.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default:
                // Python keeps unknown escapes such as `\d` verbatim.
                result.append("\\")
                result.append(escaped)
            }
        }
    }
}

extension Unicode.Scalar {
    /// Python's `str.isspace()`, which is also what jinja2's `\s` and `str.strip()` use.
    var isPythonWhitespace: Bool {
        switch value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            true
        default: false
        }
    }

    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
