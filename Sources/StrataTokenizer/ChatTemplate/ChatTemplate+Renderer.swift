/// Executes a parsed template. Scoping follows jinja2: each loop iteration and each macro
/// call gets a fresh scope that reads through to the enclosing ones, `set` writes to the
/// innermost scope (so it does not leak out of a loop), and `if` blocks share their scope.
final class TemplateRenderer {
    enum Flow { case normal, breakLoop, continueLoop }

    /// Scopes, outermost (the render context) first.
    private var scopes: [[String: Value]]
    private var output = ""
    /// Length of `output` in Unicode scalars, kept alongside because counting is O(n).
    private var outputLength = 0
    private var macroDepth = 0
    /// Guards against runaway recursion in macros; jinja2 would hit Python's recursion limit.
    private static let maximumMacroDepth = 200
    /// Loop iterations (and loop filter tests) plus macro calls this render has run.
    private var steps = 0
    /// Work one render may do. Nested loops or doubly recursive macros would otherwise run
    /// for hours while each `range()` stays small. Real chat templates take a few steps per
    /// message and tool (Qwen3's loops over the messages twice), so even a conversation of
    /// 10,000 messages stays over 30 times below this; it takes about a second to reach.
    static let maximumSteps = 1_000_000

    init(globals: [String: Value]) {
        scopes = [globals]
    }

    func render(_ body: [Node]) throws -> String {
        output = ""
        outputLength = 0
        steps = 0
        _ = try execute(body)
        return output
    }

    /// Counts one step of work, failing once the render has used up `maximumSteps`.
    func spendStep() throws {
        steps += 1
        guard steps <= Self.maximumSteps else {
            throw Self.failure("template does too much work (more than \(Self.maximumSteps) loop iterations and macro calls)")
        }
    }

    /// Appends to the output (or the capture in progress), which may not grow past
    /// `maximumLength`: a template doubling a string in a loop would otherwise fill memory.
    private func emit(_ text: String) throws {
        let length = text.unicodeScalars.count
        guard length <= Self.maximumLength - outputLength else {
            throw Self.failure("rendered output is too long (more than \(Self.maximumLength) characters)")
        }
        output += text
        outputLength += length
    }

    // MARK: - Errors

    /// An error with no position yet; `evaluate` and `execute` attach the position of the
    /// innermost expression or statement that failed.
    static func failure(_ message: String) -> ChatTemplateError {
        ChatTemplateError(kind: .runtime, message: message, line: 0, column: 0)
    }

    private func positioned<T>(_ position: SourcePosition, _ work: () throws -> T) throws -> T {
        do {
            return try work()
        } catch var error as ChatTemplateError where error.line == 0 {
            error.line = position.line
            error.column = position.column
            throw error
        }
    }

    // MARK: - Scopes

    func lookup(_ name: String) -> Value {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        if let function = BuiltinFunction(rawValue: name) { return .builtin(function) }
        return .undefined(hint: "'\(name)' is undefined")
    }

    private func bind(_ target: AssignTarget, to value: Value) throws {
        switch target {
        case .name(let name):
            scopes[scopes.count - 1][name] = value
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let namespace) = lookup(name) else {
                throw Self.failure("cannot assign attribute '\(attribute)' on '\(name)': it is not a namespace")
            }
            try Self.checkNesting(of: [value], insideNamespace: true)
            namespace.attributes[attribute] = value
        case .tuple(let targets):
            let items = try iterate(value)
            guard items.count == targets.count else {
                throw Self.failure("cannot unpack \(items.count) values into \(targets.count) variables")
            }
            for (target, item) in zip(targets, items) { try bind(target, to: item) }
        }
    }

    // MARK: - Statements

    func execute(_ nodes: [Node]) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let text):
                try emit(text)
            case .output(let expression):
                try emit(try evaluate(expression).pythonString)
            case .conditional(let branches, let otherwise):
                var chosen = otherwise
                for branch in branches where try evaluate(branch.condition).isTruthy {
                    chosen = branch.body
                    break
                }
                let flow = try execute(chosen)
                if flow != .normal { return flow }
            case .loop(let loop):
                try executeLoop(loop)
            case .assign(let target, let expression, let position):
                let value = try evaluate(expression)
                try positioned(position) { try bind(target, to: value) }
            case .capture(let name, let filters, let body):
                var value = Value.string(try capture(body))
                for filter in filters { value = try applyFilter(filter, to: value) }
                scopes[scopes.count - 1][name] = value
            case .macro(let macro):
                scopes[scopes.count - 1][macro.name] = .macro(macro)
            case .filterBlock(let filters, let body):
                var value = Value.string(try capture(body))
                for filter in filters { value = try applyFilter(filter, to: value) }
                try emit(value.pythonString)
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    /// Renders `body` into a separate buffer and returns what it produced.
    private func capture(_ body: [Node]) throws -> String {
        let saved = (output, outputLength)
        output = ""
        outputLength = 0
        defer { (output, outputLength) = saved }
        _ = try execute(body)
        return output
    }

    private func executeLoop(_ loop: ForLoop) throws {
        let source = try evaluate(loop.iterable)
        var items = try positioned(loop.iterable.position) { try iterate(source) }
        if let condition = loop.condition {
            // The inline filter runs before counting, so loop.length and loop.last see only
            // the kept items, as in jinja2.
            items = try items.filter { item in
                try spendStep()
                scopes.append([:])
                defer { scopes.removeLast() }
                try bind(loop.target, to: item)
                return try evaluate(condition).isTruthy
            }
        }
        if items.isEmpty {
            scopes.append([:])
            defer { scopes.removeLast() }
            _ = try execute(loop.otherwise)
            return
        }
        for (offset, item) in items.enumerated() {
            try spendStep()
            var state = OrderedDictionary()
            state["index"] = .integer(offset + 1)
            state["index0"] = .integer(offset)
            state["revindex"] = .integer(items.count - offset)
            state["revindex0"] = .integer(items.count - offset - 1)
            state["first"] = .bool(offset == 0)
            state["last"] = .bool(offset == items.count - 1)
            state["length"] = .integer(items.count)
            state["depth"] = .integer(1)
            state["depth0"] = .integer(0)
            state["previtem"] = offset > 0 ? items[offset - 1] : .undefined(hint: "there is no previous item")
            state["nextitem"] = offset + 1 < items.count ? items[offset + 1] : .undefined(hint: "there is no next item")
            scopes.append(["loop": .dictionary(state)])
            defer { scopes.removeLast() }
            try bind(loop.target, to: item)
            if try execute(loop.body) == .breakLoop { break }
        }
    }

    /// Python iteration: lists by item, dicts by key, strings by character; undefined is empty.
    func iterate(_ value: Value) throws -> [Value] {
        switch value {
        case .undefined: return []
        case .array(let items): return items
        case .dictionary(let entries): return entries.keys.map(Value.string)
        case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
        default: throw Self.failure("'\(value.typeName)' object is not iterable")
        }
    }

    // MARK: - Calls

    func call(_ callee: Value, _ arguments: CallArguments) throws -> Value {
        switch callee {
        case .macro(let macro):
            return try callMacro(macro, arguments)
        case .builtin(let function):
            return try callBuiltin(function, arguments)
        case .method(let receiver, let name):
            return try callMethod(name, on: receiver, arguments)
        case .undefined(let hint):
            throw Self.failure(hint)
        default:
            throw Self.failure("'\(callee.typeName)' object is not callable")
        }
    }

    private func callMacro(_ macro: MacroDefinition, _ arguments: CallArguments) throws -> Value {
        guard arguments.positional.count <= macro.parameters.count else {
            throw Self.failure("macro '\(macro.name)' takes at most \(macro.parameters.count) argument(s)")
        }
        for keyword in arguments.keywords.keys where !macro.parameters.contains(where: { $0.name == keyword }) {
            throw Self.failure("macro '\(macro.name)' has no parameter named '\(keyword)'")
        }
        guard macroDepth < Self.maximumMacroDepth else { throw Self.failure("macro recursion is too deep") }
        try spendStep()
        // A macro sees the template's top-level variables and its own parameters, never the
        // caller's loop variables.
        let savedScopes = scopes
        scopes = [scopes[0], [:]]
        macroDepth += 1
        defer {
            scopes = savedScopes
            macroDepth -= 1
        }
        for (offset, parameter) in macro.parameters.enumerated() {
            let value: Value
            if offset < arguments.positional.count {
                value = arguments.positional[offset]
            } else if let keyword = arguments.keywords[parameter.name] {
                value = keyword
            } else if let defaultValue = parameter.defaultValue {
                value = try evaluate(defaultValue)
            } else {
                value = .undefined(hint: "parameter '\(parameter.name)' was not provided")
            }
            scopes[1][parameter.name] = value
        }
        return .string(try capture(macro.body))
    }

    private func callBuiltin(_ function: BuiltinFunction, _ arguments: CallArguments) throws -> Value {
        switch function {
        case .raiseException:
            let message = arguments.value(0, "message")?.pythonString ?? ""
            throw ChatTemplateError(kind: .raised, message: message, line: 0, column: 0)
        case .namespace, .dictionary:
            var attributes = OrderedDictionary()
            for argument in arguments.positional {
                guard case .dictionary(let entries) = argument else {
                    throw Self.failure("\(function.rawValue)() takes a dict as positional argument")
                }
                for (key, value) in entries.entries { attributes[key] = value }
            }
            for (key, value) in arguments.keywords.entries { attributes[key] = value }
            try Self.checkNesting(of: attributes.values, insideNamespace: function == .namespace)
            return function == .namespace ? .namespace(Namespace(attributes)) : .dictionary(attributes)
        case .range:
            let bounds = try arguments.positional.map { try $0.requireInteger("range()") }
            let (start, stop, step): (Int, Int, Int) =
                switch bounds.count {
                case 1: (0, bounds[0], 1)
                case 2: (bounds[0], bounds[1], 1)
                case 3: (bounds[0], bounds[1], bounds[2])
                default: throw Self.failure("range() expects 1 to 3 integer arguments")
                }
            guard step != 0 else { throw Self.failure("range() step must not be zero") }
            let values = Array(stride(from: start, to: stop, by: step).prefix(Self.maximumRange + 1))
            // The jinja2 sandbox refuses ranges this large too.
            guard values.count <= Self.maximumRange else { throw Self.failure("range() is too large") }
            return .array(values.map(Value.integer))
        }
    }

    static let maximumRange = 100_000

    // MARK: - Expressions

    func evaluate(_ expression: Expression) throws -> Value {
        try positioned(expression.position) { try evaluateUnpositioned(expression) }
    }

    private func evaluateUnpositioned(_ expression: Expression) throws -> Value {
        switch expression.kind {
        case .literal(let literal):
            switch literal {
            case .none: return .none
            case .bool(let flag): return .bool(flag)
            case .integer(let number): return .integer(number)
            case .double(let number): return .double(number)
            case .string(let text): return .string(text)
            }
        case .name(let name):
            return lookup(name)
        case .list(let items), .tuple(let items):
            let values = try items.map(evaluate)
            try Self.checkNesting(of: values)
            return .array(values)
        case .dictionary(let pairs):
            var entries = OrderedDictionary()
            for pair in pairs { entries[try evaluate(pair.key).pythonString] = try evaluate(pair.value) }
            try Self.checkNesting(of: entries.values)
            return .dictionary(entries)
        case .attribute(let base, let name):
            return try attribute(name, of: try evaluate(base))
        case .item(let base, let key):
            return try item(try evaluate(key), of: try evaluate(base))
        case .slice(let base, let start, let stop, let step):
            let bounds = try [start, stop, step].map { try $0.map(evaluate) }
            return try slice(try evaluate(base), start: bounds[0], stop: bounds[1], step: bounds[2])
        case .call(let callee, let arguments):
            return try call(try evaluate(callee), try evaluateArguments(arguments))
        case .filter(let base, let filter):
            return try applyFilter(filter, to: try evaluate(base))
        case .test(let base, let name, let arguments):
            return .bool(try applyTest(name, to: try evaluate(base), try evaluateArguments(arguments)))
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .negate(let operand):
            return try arithmetic(.subtract, .integer(0), try evaluate(operand))
        case .plus(let operand):
            return try arithmetic(.add, .integer(0), try evaluate(operand))
        case .binary(let operation, let left, let right):
            return try arithmetic(operation, try evaluate(left), try evaluate(right))
        case .and(let left, let right):
            let first = try evaluate(left)
            return first.isTruthy ? try evaluate(right) : first
        case .or(let left, let right):
            let first = try evaluate(left)
            return first.isTruthy ? first : try evaluate(right)
        case .compare(let first, let operations):
            var left = try evaluate(first)
            for (operation, operand) in operations {
                let right = try evaluate(operand)
                guard try compare(operation, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .concat(let parts):
            return .string(try Self.joinedWithinLimit(try parts.map { try evaluate($0).pythonString }))
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            return try otherwise.map(evaluate) ?? .undefined(hint: "the conditional expression had no else branch")
        }
    }

    func evaluateArguments(_ arguments: Arguments) throws -> CallArguments {
        CallArguments(
            positional: try arguments.positional.map(evaluate),
            keywords: OrderedDictionary(try arguments.keywords.map { ($0.name, try evaluate($0.value)) }))
    }

    func applyFilter(_ filter: FilterCall, to value: Value) throws -> Value {
        try positioned(filter.position) {
            try applyFilter(filter.name, to: value, try evaluateArguments(filter.arguments))
        }
    }

    /// jinja2's `getattr`: a Python attribute (a method) first, then the dict key.
    func attribute(_ name: String, of value: Value) throws -> Value {
        switch value {
        case .undefined(let hint):
            throw Self.failure(hint)
        case .dictionary(let entries):
            if Self.dictionaryMethods.contains(name) { return .method(receiver: value, name: name) }
            return entries[name] ?? .undefined(hint: "'dict object' has no attribute '\(name)'")
        case .namespace(let namespace):
            return namespace.attributes[name] ?? .undefined(hint: "'Namespace object' has no attribute '\(name)'")
        case .string where Self.stringMethods.contains(name):
            return .method(receiver: value, name: name)
        default:
            return .undefined(hint: "'\(value.typeName) object' has no attribute '\(name)'")
        }
    }

    /// jinja2's `getitem`: the subscript first, then a same-named attribute; anything
    /// missing is undefined rather than an error.
    func item(_ key: Value, of value: Value) throws -> Value {
        switch (value, key) {
        case (.undefined(let hint), _):
            throw Self.failure(hint)
        case (.dictionary(let entries), .string(let name)):
            if let found = entries[name] { return found }
            return try attribute(name, of: value)
        case (.array(let items), _):
            guard let position = key.numericValue, case .integer(let offset) = position else { break }
            let resolved = offset < 0 ? offset + items.count : offset
            if items.indices.contains(resolved) { return items[resolved] }
            return .undefined(hint: "list object has no element \(offset)")
        case (.string(let text), _):
            guard let position = key.numericValue, case .integer(let offset) = position else { break }
            let scalars = Array(text.unicodeScalars)
            let resolved = offset < 0 ? offset + scalars.count : offset
            if scalars.indices.contains(resolved) { return .string(String(scalars[resolved])) }
            return .undefined(hint: "str object has no element \(offset)")
        case (_, .string(let name)):
            return try attribute(name, of: value)
        default:
            break
        }
        return .undefined(hint: "'\(value.typeName) object' has no element \(key.pythonRepresentation)")
    }

    /// Python slicing (`xs[1:]`, `s[:-1]`, `xs[::-1]`) on lists and strings.
    private func slice(_ value: Value, start: Value?, stop: Value?, step: Value?) throws -> Value {
        func bound(_ value: Value?) throws -> Int? {
            switch value {
            case nil, .none?, .undefined?: return nil
            case let value?: return try value.requireInteger("slice indices")
            }
        }
        let stride = try bound(step) ?? 1
        guard stride != 0 else { throw Self.failure("slice step cannot be zero") }
        func indices(count: Int) throws -> [Int] {
            func clamp(_ index: Int?, default defaultValue: Int) -> Int {
                guard var index else { return defaultValue }
                if index < 0 { index += count }
                return stride > 0 ? min(max(index, 0), count) : min(max(index, -1), count - 1)
            }
            let first = clamp(try bound(start), default: stride > 0 ? 0 : count - 1)
            let last = clamp(try bound(stop), default: stride > 0 ? count : -1)
            return Array(Swift.stride(from: first, to: last, by: stride))
        }
        switch value {
        case .array(let items):
            return .array(try indices(count: items.count).map { items[$0] })
        case .string(let text):
            let scalars = Array(text.unicodeScalars)
            var result = String.UnicodeScalarView()
            for index in try indices(count: scalars.count) { result.append(scalars[index]) }
            return .string(String(result))
        case .undefined(let hint):
            throw Self.failure(hint)
        default:
            throw Self.failure("'\(value.typeName)' object is not subscriptable")
        }
    }
}

/// Evaluated arguments of a call, with Python's "by position or by name" lookup.
struct CallArguments {
    var positional: [Value] = []
    var keywords = OrderedDictionary()

    /// The argument at `position`, or passed as `name`.
    func value(_ position: Int, _ name: String) -> Value? {
        position < positional.count ? positional[position] : keywords[name]
    }
}
