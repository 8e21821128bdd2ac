import Foundation
import Testing

@testable import StrataTokenizer

// Expected outputs come from Python jinja2 configured as transformers' apply_chat_template
// (Fixtures/chat/make_chat_fixtures.py); every rendering must match byte for byte.

/// A fixture value: JSON with dict order and floats tagged, since JSONDecoder keeps neither.
private struct TaggedValue: Decodable {
    var value: TemplateValue

    private struct Pair: Decodable {
        var key: String
        var value: TaggedValue

        init(from decoder: Decoder) throws {
            var container = try decoder.unkeyedContainer()
            key = try container.decode(String.self)
            value = try container.decode(TaggedValue.self)
        }
    }

    private enum Tag: String, CodingKey {
        case pairs = "__pairs__"
        case float = "__float__"
    }

    init(from decoder: Decoder) throws {
        if let container = try? decoder.container(keyedBy: Tag.self) {
            if let number = try container.decodeIfPresent(Double.self, forKey: .float) {
                value = .double(number)
            } else {
                value = .dictionary(try container.decode([Pair].self, forKey: .pairs).map { ($0.key, $0.value.value) })
            }
            return
        }
        if var list = try? decoder.unkeyedContainer() {
            var items: [TemplateValue] = []
            while !list.isAtEnd { items.append(try list.decode(TaggedValue.self).value) }
            value = .array(items)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            value = .none
        } else if let flag = try? single.decode(Bool.self) {
            value = .bool(flag)
        } else if let number = try? single.decode(Int.self) {
            value = .integer(number)
        } else {
            value = .string(try single.decode(String.self))
        }
    }
}

private struct Fixtures: Decodable {
    struct Case: Decodable {
        var conversation: String
        var messages: [ChatMessage]
        var add_generation_prompt: Bool
        var bos_token: String
        var eos_token: String
        var extra_context: TaggedValue
        var expected: String?
        var raised: String?
        var error: String?
    }

    struct Template: Decodable {
        var name: String
        var source: String
        var cases: [Case]
    }

    struct Snippet: Decodable {
        var name: String
        var source: String
        var expected: String?
        var raised: String?
        var error: String?
    }

    var snippet_context: TaggedValue
    var templates: [Template]
    var snippets: [Snippet]

    static func load() throws -> Fixtures {
        let url = try #require(Bundle.module.url(forResource: "chat_templates", withExtension: "json", subdirectory: "Fixtures/chat"))
        return try JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: url))
    }
}

private func dictionary(_ tagged: TaggedValue) -> [String: TemplateValue] {
    guard case .dictionary(let entries) = tagged.value else { return [:] }
    return Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
}

/// Compares byte for byte and, on a mismatch, reports where the outputs diverge.
private func expectIdentical(_ rendered: String, _ expected: String, _ label: String) {
    let got = Array(rendered.utf8)
    let want = Array(expected.utf8)
    guard got != want else { return }
    let offset = zip(got, want).prefix { $0 == $1 }.count
    func excerpt(_ bytes: [UInt8]) -> String {
        String(decoding: bytes[max(0, offset - 40)..<min(bytes.count, offset + 40)], as: UTF8.self).debugDescription
    }
    Issue.record("\(label): output differs at byte \(offset)\n  got:      \(excerpt(got))\n  expected: \(excerpt(want))")
}

/// Checks one rendering attempt against a fixture's expected output, raised message or error.
private func check(
    _ label: String, expected: String?, raised: String?, error: String?, render: () throws -> String
) {
    do {
        let rendered = try render()
        if let expected {
            expectIdentical(rendered, expected, label)
        } else {
            Issue.record("\(label): rendered, but jinja2 failed with \(raised ?? error ?? "?")")
        }
    } catch let thrown as ChatTemplateError {
        if let raised {
            #expect(thrown.kind == .raised && thrown.message == raised, "\(label): \(thrown)")
        } else if error != nil {
            #expect(thrown.kind == .runtime, "\(label): \(thrown)")
        } else {
            Issue.record("\(label): \(thrown)")
        }
    } catch {
        Issue.record("\(label): unexpected error \(error)")
    }
}

@Suite struct ChatTemplateTests {
    @Test func modelTemplatesMatchJinja() throws {
        let fixtures = try Fixtures.load()
        let required = ["smollm2-135m", "qwen2.5-coder-0.5b"]
        #expect(Set(required).isSubset(of: fixtures.templates.map(\.name)))
        for fixture in fixtures.templates {
            let template: ChatTemplate
            do {
                template = try ChatTemplate(source: fixture.source)
            } catch {
                Issue.record("\(fixture.name): does not parse: \(error)")
                continue
            }
            for item in fixture.cases {
                let label = "\(fixture.name) / \(item.conversation) / generation prompt \(item.add_generation_prompt)"
                check(label, expected: item.expected, raised: item.raised, error: item.error) {
                    try template.render(
                        messages: item.messages, addGenerationPrompt: item.add_generation_prompt,
                        bosToken: item.bos_token, eosToken: item.eos_token,
                        extraContext: dictionary(item.extra_context))
                }
            }
        }
    }

    @Test func snippetsMatchJinja() throws {
        let fixtures = try Fixtures.load()
        let context = dictionary(fixtures.snippet_context)
        for snippet in fixtures.snippets {
            check(snippet.name, expected: snippet.expected, raised: snippet.raised, error: snippet.error) {
                try ChatTemplate(source: snippet.source).render(context: context)
            }
        }
    }

    @Test func smolLMRendersChatML() throws {
        let source = """
            {% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
            """
        let rendered = try ChatTemplate(source: source).render(
            messages: [ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        #expect(rendered == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    // MARK: - Errors

    private func syntaxError(_ source: String) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate(source: source)
            return nil
        } catch let error as ChatTemplateError {
            return error
        } catch {
            return nil
        }
    }

    @Test(arguments: [
        ("{% if x %}abc", 1, 4, "'if'"),
        ("a\n  {% for m in messages %}{{ m }}", 2, 6, "'endfor'"),
        ("{{ name ", 1, 1, "'}}'"),
        ("ok\n{{ x | frobnicate }}", 2, 8, "unknown filter 'frobnicate'"),
        ("{{ x is frobnicated }}", 1, 9, "unknown test 'frobnicated'"),
        ("{% frobnicate %}", 1, 4, "unknown tag 'frobnicate'"),
        ("{% if x %}{% endfor %}", 1, 14, "'endif'"),
        ("{{ 'unterminated }}", 1, 4, "unterminated string"),
        ("{# never closed", 1, 1, "comment"),
        ("{{ (1 + 2 }}", 1, 11, "expected ')'"),
        ("{{ (1 + 2", 1, 4, "unclosed '('"),
        ("{{ 1 + ) }}", 1, 8, "unexpected ')'"),
        ("{% break %}", 1, 4, "only allowed inside a for loop"),
        ("{{ }}", 1, 4, "expected an expression"),
        ("{% set %}", 1, 8, "expected a variable name"),
        ("{{ a b }}", 1, 6, "expected end of print statement"),
    ] as [(String, Int, Int, String)])
    func syntaxErrorsNamePosition(source: String, line: Int, column: Int, fragment: String) {
        guard let error = syntaxError(source) else {
            Issue.record("\(source.debugDescription) parsed without error")
            return
        }
        #expect(error.kind == .syntax)
        #expect(error.line == line && error.column == column, "\(error)")
        #expect(error.message.contains(fragment), "\(error)")
    }

    /// Like jinja2, an unknown filter inside an `if` or a conditional expression only fails
    /// when it runs, so templates can guard filters other runtimes provide.
    @Test func unknownFiltersInConditionalsFailOnlyWhenRun() throws {
        let guarded = try ChatTemplate(source: "{% if flag %}{{ x | from_json }}{% endif %}{{ y | from_json if flag else 'ok' }}")
        #expect(try guarded.render(context: ["flag": false]) == "ok")
        #expect(throws: ChatTemplateError.self) { try guarded.render(context: ["flag": true, "x": "1"]) }
    }

    @Test func runtimeErrorsNamePosition() throws {
        let template = try ChatTemplate(source: "line one\n{{ messages[0].content + 1 }}")
        #expect {
            try template.render(messages: [ChatMessage(role: "user", content: "x")], addGenerationPrompt: false)
        } throws: { error in
            guard let error = error as? ChatTemplateError else { return false }
            return error.kind == .runtime && error.line == 2 && error.message.contains("concatenate")
        }
        let raising = try ChatTemplate(source: "{{ raise_exception('Roles must alternate') }}")
        #expect(throws: ChatTemplateError(kind: .raised, message: "Roles must alternate", line: 1, column: 4)) {
            try raising.render(messages: [], addGenerationPrompt: false)
        }
    }

    /// Every prefix of a real template must either parse or fail with a syntax error: no
    /// crash, no hang.
    @Test func truncatedTemplatesFailCleanly() throws {
        let fixtures = try Fixtures.load()
        let source = try #require(fixtures.templates.first { $0.name == "qwen2.5-coder-0.5b" }).source
        let scalars = Array(source.unicodeScalars)
        for length in stride(from: 0, to: scalars.count, by: 7) {
            let prefix = String(String.UnicodeScalarView(scalars[..<length]))
            do {
                _ = try ChatTemplate(source: prefix)
            } catch let error as ChatTemplateError {
                #expect(error.kind == .syntax && error.line >= 1 && error.column >= 1)
            }
        }
    }

    // MARK: - Limits against hostile templates

    /// Renders `source`, expecting a clear error whose message contains `fragment`.
    private func expectFailure(_ source: String, kind: ChatTemplateError.Kind = .runtime, _ fragment: String) {
        #expect {
            try ChatTemplate(source: source).render(context: [:])
        } throws: { error in
            guard let error = error as? ChatTemplateError else { return false }
            return error.kind == kind && error.message.contains(fragment)
        }
    }

    /// Deep nesting used to overflow the parser's stack (a crash, not an error).
    @Test func deeplyNestedTemplatesFailCleanly() throws {
        let depth = 10_000
        let parentheses = "{{ " + String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth) + " }}"
        let lists = "{{ " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + " }}"
        let dictionaries = "{{ " + String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth) + " }}"
        let signs = "{{ " + String(repeating: "-", count: depth) + "1 }}"
        let negations = "{{ " + String(repeating: "not ", count: depth) + "1 }}"
        let calls = "{{ " + String(repeating: "x(", count: depth) + String(repeating: ")", count: depth) + " }}"
        let conditionals = "{{ " + String(repeating: "1 if x else ", count: depth) + "1 }}"
        let blocks = String(repeating: "{% if x %}", count: depth) + String(repeating: "{% endif %}", count: depth)
        // A long operator chain recurses little while parsing but builds a deep tree.
        let chain = "{{ 1" + String(repeating: " + 1", count: 100_000) + " }}"
        for source in [parentheses, lists, dictionaries, signs, negations, calls, conditionals, blocks, chain] {
            guard let error = syntaxError(source) else {
                Issue.record("\(source.prefix(30))... parsed without error")
                continue
            }
            #expect(error.kind == .syntax && error.message.contains("nests too deeply"), "\(error)")
        }
        // Nesting just inside the limit still works.
        let allowed = TemplateParser.maximumNesting - 2
        let nested = "{{ " + String(repeating: "[", count: allowed) + String(repeating: "]", count: allowed) + " | length }}"
        #expect(try ChatTemplate(source: nested).render(context: [:]) == "1")
    }

    /// Values built at run time used to nest without bound and crash when printed or freed.
    @Test func deeplyNestedValuesFailCleanly() {
        let wrapping = "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}"
        expectFailure(wrapping + "{{ ns.x | length }}", "value nests too deeply")
        expectFailure(wrapping + "{{ ns.x | tojson }}", "value nests too deeply")
        expectFailure(
            "{% set ns = namespace(x={}) %}{% for i in range(100000) %}{% set ns.x = {'a': ns.x} %}{% endfor %}",
            "value nests too deeply")
        expectFailure(
            "{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = dict(a=ns.x) %}{% endfor %}",
            "value nests too deeply")
        // Shared storage makes a doubled list cheap to build but exponential to walk.
        expectFailure(
            "{% set ns = namespace(x=[]) %}{% for i in range(100) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}",
            "too large")
        // A namespace inside a namespace could form a cycle or an ever longer chain.
        expectFailure("{% set ns = namespace() %}{% set ns.x = ns %}{{ ns }}", "namespace cannot be stored")
        expectFailure(
            "{% set ns = namespace() %}{% set ns.next = namespace(x=[ns]) %}", "namespace cannot be stored")
    }

    /// Nested loops used to run for hours even though each `range()` is small; a macro that
    /// calls itself twice does too, although its recursion depth (100) is allowed.
    @Test(arguments: [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
        "{% for i in range(100000) %}{% for j in range(100000) if j %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(100) }}",
    ])
    func runawayLoopsFailCleanly(source: String) {
        expectFailure(source, "too much work")
    }

    /// Doubling a string used to grow it to gigabytes.
    @Test func oversizedStringsFailCleanly() {
        let doubling = "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s "
        expectFailure(doubling + "~ ns.s %}{% endfor %}{{ ns.s | length }}", "too long")
        expectFailure(doubling + "+ ns.s %}{% endfor %}{{ ns.s | length }}", "too long")
        expectFailure("{{ ((range(100000) | list) * 100 + [1]) | length }}", "concatenated list is too long")
        expectFailure("{{ range(100000) | join('x' * 1000) }}", "too long")
        expectFailure("{{ ('x' * 100000).replace('', 'y' * 1000) }}", "too long")
        // Each piece is small; only the output as a whole gets too long.
        expectFailure(
            "{% set s = 'x' * 1000000 %}{% for i in range(20) %}{{ s }}{% endfor %}", "rendered output is too long")
    }

    @Test func templateValuesKeepDictionaryOrder() throws {
        let tool: TemplateValue = ["name": "f", "arguments": ["b": 1, "a": [true, nil, 2.5]]]
        let rendered = try ChatTemplate(source: "{{ tool | tojson }}").render(context: ["tool": tool])
        #expect(rendered == #"{"name": "f", "arguments": {"b": 1, "a": [true, null, 2.5]}}"#)
    }
}
