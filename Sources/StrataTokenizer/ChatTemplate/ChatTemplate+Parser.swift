/// Recursive-descent parser with jinja2's grammar and operator precedence:
/// conditional < or < and < not < comparison < `+ -` < `~` < `* / // %` < `**` < unary,
/// and filters / tests bind to the unary operand (`'a' + x | trim` trims only `x`).
struct TemplateParser {
    private var tokens: [Token]
    private var index = 0
    /// `break` / `continue` are only valid inside a loop body, checked while parsing as
    /// jinja2 does.
    private var loopDepth = 0
    /// Unknown filter and test names seen so far. jinja2 rejects them when compiling, except
    /// inside an `if` statement or conditional expression ("soft" places), where a template
    /// may guard a filter another runtime provides; there the error waits until it runs.
    private var unknownCallables: [(message: String, position: SourcePosition, isSoft: Bool)] = []
    private var softDepth = 0
    /// How many blocks and sub-expressions enclose the cursor. The parser recurses once per
    /// level, so a hostile template nesting thousands of `(` or `{% if %}` would overflow
    /// the stack without this cap.
    private var nesting = 0

    /// Deepest nesting of blocks, parentheses, literals and operators a template may use,
    /// both while parsing and in the finished expression trees (which the renderer walks
    /// recursively too). Real chat templates stay below about 20.
    static let maximumNesting = 256

    init(tokens: [Token]) {
        self.tokens = tokens
    }

    mutating func parseTemplate() throws -> [Node] {
        let nodes = try parseBody(until: [], opener: nil).nodes
        if let unknown = unknownCallables.first(where: { !$0.isSoft }) { throw error(unknown.message, at: unknown.position) }
        return nodes
    }

    private mutating func noteIfUnknown(_ name: String, isFilter: Bool, at position: SourcePosition) {
        let known = isFilter ? TemplateRenderer.filterNames : TemplateRenderer.testNames
        guard !known.contains(name) else { return }
        unknownCallables.append(("unknown \(isFilter ? "filter" : "test") '\(name)'", position, softDepth > 0))
    }

    // MARK: - Nesting

    /// Enters one nesting level, failing once the template nests too deeply; the caller
    /// leaves it again with `defer { nesting -= 1 }`.
    private mutating func descend() throws {
        guard nesting < Self.maximumNesting else {
            throw error("template nests too deeply (more than \(Self.maximumNesting) levels)")
        }
        nesting += 1
    }

    /// Runs `work` one nesting level deeper.
    private mutating func nested<T>(_ work: (inout TemplateParser) throws -> T) throws -> T {
        try descend()
        defer { nesting -= 1 }
        return try work(&self)
    }

    /// Builds an expression node; long operator chains such as `a + a + ... + a` make deep
    /// trees without deep parser recursion, so the tree depth is capped here as well.
    private func make(_ kind: Expression.Kind, position: SourcePosition) throws -> Expression {
        let expression = Expression(kind: kind, position: position)
        guard expression.depth <= Self.maximumNesting else {
            throw error("template nests too deeply (more than \(Self.maximumNesting) levels)", at: position)
        }
        return expression
    }

    // MARK: - Token helpers

    private var current: Token { tokens[index] }

    private mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    private func error(_ message: String, at position: SourcePosition? = nil) -> ChatTemplateError {
        let place = position ?? current.position
        return ChatTemplateError(kind: .syntax, message: message, line: place.line, column: place.column)
    }

    private static func describe(_ kind: TokenKind) -> String {
        switch kind {
        case .text: "template text"
        case .variableBegin: "'{{'"
        case .variableEnd: "end of print statement '}}'"
        case .blockBegin: "'{%'"
        case .blockEnd: "end of statement block '%}'"
        case .name(let name): "'\(name)'"
        case .string: "string literal"
        case .integer(let value): "'\(value)'"
        case .double(let value): "'\(value)'"
        case .symbol(let symbol): "'\(symbol)'"
        case .end: "end of template"
        }
    }

    private func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol(symbol) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func skip(symbol: String) -> Bool {
        guard isSymbol(symbol) else { return false }
        advance()
        return true
    }

    private mutating func skip(name: String) -> Bool {
        guard isName(name) else { return false }
        advance()
        return true
    }

    private mutating func expect(symbol: String) throws {
        guard skip(symbol: symbol) else {
            throw error("expected '\(symbol)', got \(Self.describe(current.kind))")
        }
    }

    private mutating func expectName() throws -> String {
        guard case .name(let name) = current.kind else {
            throw error("expected a name, got \(Self.describe(current.kind))")
        }
        advance()
        return name
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else {
            throw error("expected end of statement block '%}', got \(Self.describe(current.kind))")
        }
        advance()
    }

    // MARK: - Statements

    /// Parses template content until a block tag named in `endTags`; returns the nodes and the
    /// tag found, with the cursor just after the tag's name.
    private mutating func parseBody(
        until endTags: [String], opener: (tag: String, position: SourcePosition)?
    ) throws -> (nodes: [Node], endTag: String?) {
        var nodes: [Node] = []
        while true {
            let token = current
            switch token.kind {
            case .text(let text):
                nodes.append(.text(text))
                advance()
            case .variableBegin:
                advance()
                let expression = try parseTuple()
                guard current.kind == .variableEnd else {
                    throw error("expected end of print statement '}}', got \(Self.describe(current.kind))")
                }
                advance()
                nodes.append(.output(expression))
            case .blockBegin:
                advance()
                let tagPosition = current.position
                let tag = try expectName()
                if endTags.contains(tag) { return (nodes, tag) }
                nodes += try nested { try $0.parseStatement(tag, at: tagPosition, enclosing: opener, endTags: endTags) }
            case .end:
                guard let opener else { return (nodes, nil) }
                throw error(
                    "unexpected end of template: '\(opener.tag)' opened here was never closed;"
                        + " expected \(Self.list(endTags))", at: opener.position)
            default:
                throw error("unexpected \(Self.describe(token.kind))")
            }
        }
    }

    private static func list(_ tags: [String]) -> String {
        tags.map { "'\($0)'" }.joined(separator: " or ")
    }

    private static let endTagNames: Set<String> = [
        "endif", "endfor", "endset", "endmacro", "endfilter", "endgeneration", "elif", "else",
    ]

    private mutating func parseStatement(
        _ tag: String, at position: SourcePosition,
        enclosing opener: (tag: String, position: SourcePosition)?, endTags: [String]
    ) throws -> [Node] {
        switch tag {
        case "if": return [try parseIf(at: position)]
        case "for": return [try parseFor(at: position)]
        case "set": return [try parseSet(at: position)]
        case "macro": return [try parseMacro(at: position)]
        case "filter":
            let filters = try parseFilterChain()
            try expectBlockEnd()
            let body = try parseBlockBody(closedBy: "endfilter", opener: ("filter", position))
            return [.filterBlock(filters: filters, body: body)]
        case "generation":
            // Hugging Face's marker for assistant spans; it renders its body unchanged.
            try expectBlockEnd()
            return try parseBlockBody(closedBy: "endgeneration", opener: ("generation", position))
        case "break", "continue":
            guard loopDepth > 0 else { throw error("'\(tag)' is only allowed inside a for loop", at: position) }
            try expectBlockEnd()
            return [tag == "break" ? .breakLoop : .continueLoop]
        default:
            if Self.endTagNames.contains(tag), let opener {
                throw error(
                    "unexpected '\(tag)'; the '\(opener.tag)' at line \(opener.position.line),"
                        + " column \(opener.position.column) expects \(Self.list(endTags))", at: position)
            }
            throw error("unknown tag '\(tag)'", at: position)
        }
    }

    private mutating func parseBlockBody(closedBy endTag: String, opener: (String, SourcePosition)) throws -> [Node] {
        let body = try parseBody(until: [endTag], opener: opener).nodes
        try expectBlockEnd()
        return body
    }

    private mutating func parseIf(at position: SourcePosition) throws -> Node {
        softDepth += 1
        defer { softDepth -= 1 }
        var branches: [(condition: Expression, body: [Node])] = []
        var condition = try parseTuple(allowConditional: false)
        try expectBlockEnd()
        while true {
            let (body, endTag) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", position))
            branches.append((condition, body))
            switch endTag {
            case "elif":
                condition = try parseTuple(allowConditional: false)
                try expectBlockEnd()
            case "else":
                try expectBlockEnd()
                let otherwise = try parseBlockBody(closedBy: "endif", opener: ("if", position))
                return .conditional(branches: branches, otherwise: otherwise)
            default:
                try expectBlockEnd()
                return .conditional(branches: branches, otherwise: [])
            }
        }
    }

    private mutating func parseFor(at position: SourcePosition) throws -> Node {
        let target = try parseAssignTarget(allowNamespace: false, endNames: ["in"])
        guard skip(name: "in") else { throw error("expected 'in', got \(Self.describe(current.kind))") }
        let iterable = try parseTuple(allowConditional: false, endNames: ["recursive"])
        let condition = skip(name: "if") ? try parseConditional() : nil
        if isName("recursive") { throw error("recursive loops are not supported") }
        try expectBlockEnd()
        loopDepth += 1
        let (body, endTag) = try parseBody(until: ["endfor", "else"], opener: ("for", position))
        loopDepth -= 1
        try expectBlockEnd()
        var otherwise: [Node] = []
        if endTag == "else" {
            otherwise = try parseBlockBody(closedBy: "endfor", opener: ("for", position))
        }
        return .loop(ForLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise))
    }

    private mutating func parseSet(at position: SourcePosition) throws -> Node {
        let target = try parseAssignTarget(allowNamespace: true, endNames: [])
        if skip(symbol: "=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .assign(target, value, position)
        }
        guard case .name(let name) = target else {
            throw error("a block 'set' needs a single variable name", at: position)
        }
        let filters = isSymbol("|") ? try parseFilterChain(skippingPipe: true) : []
        try expectBlockEnd()
        let body = try parseBlockBody(closedBy: "endset", opener: ("set", position))
        return .capture(name: name, filters: filters, body: body)
    }

    private mutating func parseMacro(at position: SourcePosition) throws -> Node {
        let name = try expectName()
        try expect(symbol: "(")
        var parameters: [(name: String, defaultValue: Expression?)] = []
        while !skip(symbol: ")") {
            if !parameters.isEmpty { try expect(symbol: ",") }
            if skip(symbol: ")") { break }
            let parameter = try expectName()
            let defaultValue = skip(symbol: "=") ? try parseConditional() : nil
            parameters.append((parameter, defaultValue))
        }
        try expectBlockEnd()
        let savedDepth = loopDepth
        loopDepth = 0
        defer { loopDepth = savedDepth }
        let body = try parseBlockBody(closedBy: "endmacro", opener: ("macro", position))
        return .macro(MacroDefinition(name: name, parameters: parameters, body: body))
    }

    private mutating func parseAssignTarget(allowNamespace: Bool, endNames: Set<String>) throws -> AssignTarget {
        var targets: [AssignTarget] = []
        var isTuple = false
        while true {
            if !targets.isEmpty { try expect(symbol: ",") }
            if isSymbol("=") || current.kind == .blockEnd { break }
            if case .name(let name) = current.kind, endNames.contains(name) { break }
            let name = try expectName()
            if allowNamespace && skip(symbol: ".") {
                targets.append(.namespaceAttribute(name, try expectName()))
            } else {
                targets.append(.name(name))
            }
            guard isSymbol(",") else { break }
            isTuple = true
        }
        guard let first = targets.first else { throw error("expected a variable name") }
        return isTuple ? .tuple(targets) : first
    }

    private mutating func parseFilterChain(skippingPipe: Bool = false) throws -> [FilterCall] {
        var filters: [FilterCall] = []
        repeat {
            if skippingPipe || !filters.isEmpty { try expect(symbol: "|") }
            filters.append(try parseFilterCall())
        } while isSymbol("|")
        return filters
    }

    // MARK: - Expressions

    /// An expression, or a comma-separated tuple of them (`{{ a, b }}`, `for k, v in ...`).
    private mutating func parseTuple(
        allowConditional: Bool = true, endNames: Set<String> = [], parenthesized: Bool = false
    ) throws -> Expression {
        let position = current.position
        var items: [Expression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expect(symbol: ",") }
            if isTupleEnd(endNames) { break }
            items.append(allowConditional ? try parseConditional() : try parseOr())
            guard isSymbol(",") else { break }
            isTuple = true
        }
        if !isTuple, let first = items.first { return first }
        if items.isEmpty && !parenthesized {
            throw error("expected an expression, got \(Self.describe(current.kind))")
        }
        return try make(.tuple(items), position: position)
    }

    private func isTupleEnd(_ endNames: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .symbol(")"): true
        case .name(let name): endNames.contains(name)
        default: false
        }
    }

    private mutating func parseConditional() throws -> Expression {
        let firstUnknown = unknownCallables.count
        var expression = try parseOr()
        while isName("if") {
            let position = current.position
            advance()
            softDepth += 1
            defer { softDepth -= 1 }
            for index in firstUnknown..<unknownCallables.count { unknownCallables[index].isSoft = true }
            let condition = try parseOr()
            let otherwise = skip(name: "else") ? try nested { try $0.parseConditional() } : nil
            expression = try make(
                .conditional(condition: condition, then: expression, otherwise: otherwise), position: position)
        }
        return expression
    }

    private mutating func parseOr() throws -> Expression {
        try parseLogical("or", combine: Expression.Kind.or) { try $0.parseAnd() }
    }

    private mutating func parseAnd() throws -> Expression {
        try parseLogical("and", combine: Expression.Kind.and) { try $0.parseNot() }
    }

    /// A left-associative chain of `and` or `or`.
    private mutating func parseLogical(
        _ keyword: String, combine: (Expression, Expression) -> Expression.Kind,
        operand: (inout TemplateParser) throws -> Expression
    ) throws -> Expression {
        var left = try operand(&self)
        while isName(keyword) {
            let position = current.position
            advance()
            left = try make(combine(left, try operand(&self)), position: position)
        }
        return left
    }

    private mutating func parseNot() throws -> Expression {
        guard isName("not") else { return try parseCompare() }
        let position = current.position
        advance()
        return try make(.not(try nested { try $0.parseNot() }), position: position)
    }

    private static let comparisonSymbols: [String: ComparisonOperator] = [
        "==": .equal, "!=": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual,
    ]

    private mutating func parseCompare() throws -> Expression {
        let position = current.position
        let first = try parseAdditive()
        var operations: [(ComparisonOperator, Expression)] = []
        while true {
            if case .symbol(let symbol) = current.kind, let operation = Self.comparisonSymbols[symbol] {
                advance()
                operations.append((operation, try parseAdditive()))
            } else if skip(name: "in") {
                operations.append((.contains, try parseAdditive()))
            } else if isName("not"), index + 1 < tokens.count, tokens[index + 1].kind == .name("in") {
                advance()
                advance()
                operations.append((.notContains, try parseAdditive()))
            } else {
                break
            }
        }
        return operations.isEmpty ? first : try make(.compare(first, operations), position: position)
    }

    private mutating func parseBinary(
        _ symbols: [String: BinaryOperator], operand: (inout TemplateParser) throws -> Expression
    ) throws -> Expression {
        var left = try operand(&self)
        while case .symbol(let symbol) = current.kind, let operation = symbols[symbol] {
            let position = current.position
            advance()
            left = try make(.binary(operation, left, try operand(&self)), position: position)
        }
        return left
    }

    private mutating func parseAdditive() throws -> Expression {
        try parseBinary(["+": .add, "-": .subtract]) { try $0.parseConcat() }
    }

    private mutating func parseConcat() throws -> Expression {
        let position = current.position
        var parts = [try parseMultiplicative()]
        while skip(symbol: "~") { parts.append(try parseMultiplicative()) }
        return parts.count == 1 ? parts[0] : try make(.concat(parts), position: position)
    }

    private mutating func parseMultiplicative() throws -> Expression {
        try parseBinary(["*": .multiply, "/": .divide, "//": .floorDivide, "%": .modulo]) { try $0.parsePower() }
    }

    private mutating func parsePower() throws -> Expression {
        try parseBinary(["**": .power]) { try $0.parseUnary(withFilters: true) }
    }

    /// Every recursive path inside an expression (parentheses, list and dict literals, call
    /// arguments, subscripts, signs) comes back through here, so this is where it is counted.
    private mutating func parseUnary(withFilters: Bool) throws -> Expression {
        try descend()
        defer { nesting -= 1 }
        let position = current.position
        var expression: Expression
        if skip(symbol: "-") {
            expression = try make(.negate(try parseUnary(withFilters: false)), position: position)
        } else if skip(symbol: "+") {
            expression = try make(.plus(try parseUnary(withFilters: false)), position: position)
        } else {
            expression = try parsePrimary()
        }
        expression = try parsePostfix(expression)
        return withFilters ? try parseFiltersAndTests(expression) : expression
    }

    private mutating func parsePrimary() throws -> Expression {
        let token = current
        let position = token.position
        switch token.kind {
        case .name(let name):
            advance()
            switch name {
            case "true", "True": return try make(.literal(.bool(true)), position: position)
            case "false", "False": return try make(.literal(.bool(false)), position: position)
            case "none", "None": return try make(.literal(.none), position: position)
            default: return try make(.name(name), position: position)
            }
        case .string(var text):
            advance()
            // Adjacent literals concatenate, as in Python.
            while case .string(let more) = current.kind {
                text += more
                advance()
            }
            return try make(.literal(.string(text)), position: position)
        case .integer(let value):
            advance()
            return try make(.literal(.integer(value)), position: position)
        case .double(let value):
            advance()
            return try make(.literal(.double(value)), position: position)
        case .symbol("("):
            advance()
            let inner = try parseTuple(parenthesized: true)
            try expect(symbol: ")")
            return inner
        case .symbol("["):
            advance()
            var items: [Expression] = []
            while !skip(symbol: "]") {
                if !items.isEmpty { try expect(symbol: ",") }
                if skip(symbol: "]") { break }
                items.append(try parseConditional())
            }
            return try make(.list(items), position: position)
        case .symbol("{"):
            advance()
            var pairs: [(key: Expression, value: Expression)] = []
            while !skip(symbol: "}") {
                if !pairs.isEmpty { try expect(symbol: ",") }
                if skip(symbol: "}") { break }
                let key = try parseConditional()
                try expect(symbol: ":")
                pairs.append((key, try parseConditional()))
            }
            return try make(.dictionary(pairs), position: position)
        default:
            throw error("unexpected \(Self.describe(token.kind)), expected an expression")
        }
    }

    private mutating func parsePostfix(_ base: Expression) throws -> Expression {
        var expression = base
        while true {
            let position = current.position
            if skip(symbol: ".") {
                switch current.kind {
                case .name(let name):
                    advance()
                    expression = try make(.attribute(expression, name), position: position)
                case .integer(let value):
                    advance()
                    let key = try make(.literal(.integer(value)), position: position)
                    expression = try make(.item(expression, key), position: position)
                default:
                    throw error("expected an attribute name or number after '.'")
                }
            } else if skip(symbol: "[") {
                expression = try parseSubscript(of: expression, at: position)
            } else if isSymbol("(") {
                // A failing call reports where the callee starts, e.g. `raise_exception(...)`.
                expression = try make(.call(expression, try parseArguments()), position: expression.position)
            } else {
                return expression
            }
        }
    }

    private mutating func parseSubscript(of base: Expression, at position: SourcePosition) throws -> Expression {
        var bounds: [Expression?] = []
        var isSlice = false
        func atBoundEnd(_ parser: TemplateParser) -> Bool { parser.isSymbol(":") || parser.isSymbol("]") }
        bounds.append(atBoundEnd(self) ? nil : try parseConditional())
        while bounds.count < 3 && skip(symbol: ":") {
            isSlice = true
            bounds.append(atBoundEnd(self) ? nil : try parseConditional())
        }
        try expect(symbol: "]")
        guard isSlice else {
            guard let key = bounds[0] else { throw error("expected a subscript expression", at: position) }
            return try make(.item(base, key), position: position)
        }
        while bounds.count < 3 { bounds.append(nil) }
        return try make(.slice(base, start: bounds[0], stop: bounds[1], step: bounds[2]), position: position)
    }

    private mutating func parseArguments() throws -> Arguments {
        try expect(symbol: "(")
        var arguments = Arguments()
        var first = true
        while !skip(symbol: ")") {
            if !first {
                try expect(symbol: ",")
                if skip(symbol: ")") { break }
            }
            first = false
            if isSymbol("*") || isSymbol("**") { throw error("'*args' and '**kwargs' in calls are not supported") }
            if case .name(let name) = current.kind, index + 1 < tokens.count, tokens[index + 1].kind == .symbol("=") {
                advance()
                advance()
                arguments.keywords.append((name, try parseConditional()))
            } else {
                guard arguments.keywords.isEmpty else {
                    throw error("positional argument follows keyword argument")
                }
                arguments.positional.append(try parseConditional())
            }
        }
        return arguments
    }

    private mutating func parseDottedName() throws -> String {
        var name = try expectName()
        while skip(symbol: ".") { name += "." + (try expectName()) }
        return name
    }

    private mutating func parseFilterCall() throws -> FilterCall {
        let position = current.position
        let name = try parseDottedName()
        noteIfUnknown(name, isFilter: true, at: position)
        let arguments = isSymbol("(") ? try parseArguments() : Arguments()
        return FilterCall(name: name, arguments: arguments, position: position)
    }

    private mutating func parseFiltersAndTests(_ base: Expression) throws -> Expression {
        var expression = base
        while true {
            let position = current.position
            if skip(symbol: "|") {
                expression = try make(.filter(expression, try parseFilterCall()), position: position)
            } else if skip(name: "is") {
                let negated = skip(name: "not")
                let testPosition = current.position
                let name = try parseDottedName()
                noteIfUnknown(name, isFilter: false, at: testPosition)
                var arguments = Arguments()
                if isSymbol("(") {
                    arguments = try parseArguments()
                } else if startsTestArgument() {
                    // `x is divisibleby 3`: one bare argument, as jinja2 allows.
                    arguments.positional.append(try parsePostfix(try parsePrimary()))
                }
                expression = try make(.test(expression, name: name, arguments), position: position)
                if negated { expression = try make(.not(expression), position: position) }
            } else if isSymbol("(") {
                expression = try make(.call(expression, try parseArguments()), position: position)
            } else {
                return expression
            }
        }
    }

    private func startsTestArgument() -> Bool {
        switch current.kind {
        case .name(let name): !["else", "or", "and"].contains(name)
        case .string, .integer, .double, .symbol("["), .symbol("{"): true
        default: false
        }
    }
}
