/// One turn of a conversation as a chat template sees it (`message.role`, `message.content`).
public struct ChatMessage: Sendable, Equatable, Codable {
    /// `system`, `user`, `assistant`, `tool`, ... — whatever the template expects.
    public var role: String
    /// The text of the turn.
    public var content: String

    /// Creates a message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A value handed to a template from outside (tools, flags, extra special tokens).
///
/// Dictionaries keep their insertion order because `tojson` and `.items()` output depends on
/// it, exactly as with Python dicts.
public enum TemplateValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case dictionary([(key: String, value: TemplateValue)])

    public static func == (lhs: TemplateValue, rhs: TemplateValue) -> Bool {
        switch (lhs, rhs) {
        case (.none, .none): true
        case let (.bool(a), .bool(b)): a == b
        case let (.integer(a), .integer(b)): a == b
        case let (.double(a), .double(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.dictionary(a), .dictionary(b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }
}

extension TemplateValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .none }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    /// Keeps the literal's order, which is what a Python dict literal would do.
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .dictionary(elements.map { (key: $0.0, value: $0.1) })
    }
}

/// Why a template could not be parsed or rendered, and where.
public struct ChatTemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The stage that failed.
    public enum Kind: Sendable, Equatable {
        /// The template source is malformed (unclosed tag, unknown filter, ...).
        case syntax
        /// Rendering failed (undefined value used in arithmetic, wrong types, ...).
        case runtime
        /// The template itself called `raise_exception(message)`.
        case raised
    }

    public var kind: Kind
    /// What went wrong; for `.raised`, exactly the template's message.
    public var message: String
    /// 1-based line in the template source (after newline normalisation).
    public var line: Int
    /// 1-based column, counted in Unicode scalars.
    public var column: Int

    public init(kind: Kind, message: String, line: Int, column: Int) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        let stage = switch kind {
        case .syntax: "template syntax error"
        case .runtime: "template error"
        case .raised: "template raised"
        }
        return "\(stage) at line \(line), column \(column): \(message)"
    }
}

/// A chat template (a Jinja2 subset), parsed once and rendered many times.
///
/// Rendering mirrors Hugging Face's `apply_chat_template`: jinja2 with `trim_blocks=True`,
/// `lstrip_blocks=True`, loop controls, `raise_exception`, and a `tojson` that behaves like
/// `json.dumps(ensure_ascii=False)`.
public struct ChatTemplate: Sendable {
    let body: [Node]

    /// Parses `source`; throws a `.syntax` `ChatTemplateError` naming the line, column and
    /// what was expected.
    public init(source: String) throws {
        var lexer = TemplateLexer(source: source)
        var parser = TemplateParser(tokens: try lexer.tokenize())
        body = try parser.parseTemplate()
    }

    /// Renders a conversation.
    ///
    /// Like `apply_chat_template`, the template sees `messages`, `add_generation_prompt`,
    /// `bos_token`, `eos_token`, and `tools` / `documents` set to `none`; `extraContext`
    /// adds variables or overrides any of these (e.g. `tools`, `enable_thinking`,
    /// `date_string`). `strftime_now` is deliberately not provided, so output never depends on
    /// the clock.
    public func render(
        messages: [ChatMessage], addGenerationPrompt: Bool,
        bosToken: String = "", eosToken: String = "",
        extraContext: [String: TemplateValue] = [:]
    ) throws -> String {
        var context: [String: TemplateValue] = [
            "messages": .array(messages.map { ["role": .string($0.role), "content": .string($0.content)] }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
            "tools": .none,
            "documents": .none,
        ]
        context.merge(extraContext) { _, extra in extra }
        return try render(context: context)
    }

    /// Renders with exactly the given top-level variables.
    public func render(context: [String: TemplateValue]) throws -> String {
        let renderer = TemplateRenderer(globals: context.mapValues(Value.init))
        return try renderer.render(body)
    }
}
