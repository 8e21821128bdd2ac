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

    var kind: Kind
    var position: SourcePosition
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
