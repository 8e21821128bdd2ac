/// The parsed form of a template: statements (`Node`) holding expressions (`Expression`).
/// Everything here is immutable and `Sendable`, so one parsed template serves many renders.

enum Literal: Sendable {
    case none
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
}

enum BinaryOperator: Sendable {
    case add, subtract, multiply, divide, floorDivide, modulo, power
}

enum ComparisonOperator: Sendable {
    case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual, contains, notContains
}

/// Positional and keyword arguments of a call, filter or test, in source order.
struct Arguments: Sendable {
    var positional: [Expression] = []
    var keywords: [(name: String, value: Expression)] = []
}

struct FilterCall: Sendable {
    var name: String
    var arguments: Arguments
    var position: SourcePosition
}

struct Expression: Sendable {
    indirect enum Kind: Sendable {
        case literal(Literal)
        case name(String)
        case list([Expression])
        /// Tuples render and compare like lists here; templates only build them to unpack or
        /// to pass several prefixes to `startswith`.
        case tuple([Expression])
        case dictionary([(key: Expression, value: Expression)])
        case attribute(Expression, String)
        case item(Expression, Expression)
        case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, Arguments)
        case filter(Expression, FilterCall)
        case test(Expression, name: String, Arguments)
        case not(Expression)
        case negate(Expression)
        case plus(Expression)
        case binary(BinaryOperator, Expression, Expression)
        case and(Expression, Expression)
        case or(Expression, Expression)
        case compare(Expression, [(ComparisonOperator, Expression)])
        case concat([Expression])
        case conditional(condition: Expression, then: Expression, otherwise: Expression?)
    }

    let kind: Kind
    let position: SourcePosition
    /// Nodes on the longest path from here to a leaf (1 for a literal or a name). The
    /// renderer evaluates, and Swift releases, expression trees recursively, so the parser
    /// refuses trees deeper than `TemplateParser.maximumNesting`.
    let depth: Int

    init(kind: Kind, position: SourcePosition) {
        self.kind = kind
        self.position = position
        depth = 1 + (Self.children(of: kind).map(\.depth).max() ?? 0)
    }

    private static func children(of kind: Kind) -> [Expression] {
        func flatten(_ arguments: Arguments) -> [Expression] { arguments.positional + arguments.keywords.map(\.value) }
        switch kind {
        case .literal, .name: return []
        case .list(let items), .tuple(let items), .concat(let items): return items
        case .dictionary(let pairs): return pairs.flatMap { [$0.key, $0.value] }
        case .attribute(let base, _), .not(let base), .negate(let base), .plus(let base): return [base]
        case .item(let base, let key): return [base, key]
        case .slice(let base, let start, let stop, let step): return [base] + [start, stop, step].compactMap { $0 }
        case .call(let callee, let arguments): return [callee] + flatten(arguments)
        case .filter(let base, let filter): return [base] + flatten(filter.arguments)
        case .test(let base, _, let arguments): return [base] + flatten(arguments)
        case .binary(_, let left, let right), .and(let left, let right), .or(let left, let right): return [left, right]
        case .compare(let first, let operations): return [first] + operations.map(\.1)
        case .conditional(let condition, let then, let otherwise): return [condition, then] + [otherwise].compactMap { $0 }
        }
    }
}

/// The left side of `set` or the variables of `for`.
indirect enum AssignTarget: Sendable {
    case name(String)
    /// `ns.attribute`, only valid on a `namespace()` object.
    case namespaceAttribute(String, String)
    case tuple([AssignTarget])
}

struct ForLoop: Sendable {
    var target: AssignTarget
    var iterable: Expression
    var condition: Expression?
    var body: [Node]
    /// Rendered when the loop runs zero times (`{% for %}...{% else %}...{% endfor %}`).
    var otherwise: [Node]
}

struct MacroDefinition: Sendable {
    var name: String
    var parameters: [(name: String, defaultValue: Expression?)]
    var body: [Node]
}

indirect enum Node: Sendable {
    case text(String)
    case output(Expression)
    case conditional(branches: [(condition: Expression, body: [Node])], otherwise: [Node])
    case loop(ForLoop)
    case assign(AssignTarget, Expression, SourcePosition)
    /// `{% set name %}...{% endset %}`: captures rendered output, optionally filtered.
    case capture(name: String, filters: [FilterCall], body: [Node])
    case macro(MacroDefinition)
    case filterBlock(filters: [FilterCall], body: [Node])
    case breakLoop
    case continueLoop
}
