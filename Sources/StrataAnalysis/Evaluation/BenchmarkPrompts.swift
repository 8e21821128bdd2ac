import Foundation

/// What kind of text a benchmark prompt asks for; speculation pays differently on each.
public enum PromptType: String, Sendable, Codable, CodingKeyRepresentable, CaseIterable, Comparable {
    /// Source code, whose continuation tends to repeat identifiers from the prompt.
    case code
    /// Running text.
    case prose
    /// A user message, rendered with the model's own chat template.
    case chat

    public static func < (lhs: PromptType, rhs: PromptType) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// One prompt of a speed benchmark.
public struct BenchmarkPrompt: Sendable, Codable, Equatable {
    public var type: PromptType
    /// The text: the prompt itself for code and prose, the user message for chat.
    public var prompt: String

    public init(type: PromptType, prompt: String) {
        self.type = type
        self.prompt = prompt
    }
}

/// Why a prompts file could not be read. Every case names the file; entry errors say where.
public struct PromptFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    /// `line 3` (JSONL) or `entry 3` (a JSON array), nil for the file as a whole.
    public var location: String?
    public var reason: String

    public init(path: String, location: String?, reason: String) {
        self.path = path
        self.location = location
        self.reason = reason
    }

    public var description: String { [path, location].compactMap { $0 }.joined(separator: ", ") + ": " + reason }
}

/// The prompts `strata bench --speculative` measures, bundled or from a file.
public enum BenchmarkPrompts {
    /// Four code prompts (Python and Swift, where the continuation plausibly reuses the
    /// prompt's identifiers), four public-domain prose openings, and three chat requests.
    public static let bundled: [BenchmarkPrompt] = [
        BenchmarkPrompt(type: .code, prompt: """
            class Stack:
                def __init__(self):
                    self.items = []

                def push(self, item):
                    self.items.append(item)

                def pop(self):
            """),
        BenchmarkPrompt(type: .code, prompt: """
            def read_config(path):
                config = {}
                with open(path) as config_file:
                    for line in config_file:
                        key, value = line.split("=", 1)
                        config[key.strip()] = value.strip()
                return config


            def write_config(path, config):
            """),
        BenchmarkPrompt(type: .code, prompt: """
            struct Point {
                var x: Double
                var y: Double

                func distance(to other: Point) -> Double {
                    let dx = x - other.x
                    let dy = y - other.y
                    return (dx * dx + dy * dy).squareRoot()
                }

                func midpoint(with other: Point) -> Point {
            """),
        BenchmarkPrompt(type: .code, prompt: """
            enum Shape {
                case circle(radius: Double)
                case rectangle(width: Double, height: Double)
                case triangle(base: Double, height: Double)

                var area: Double {
                    switch self {
                    case .circle(let radius):
                        return Double.pi * radius * radius
            """),
        BenchmarkPrompt(type: .prose, prompt: "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."),
        BenchmarkPrompt(type: .prose, prompt: "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness,"),
        BenchmarkPrompt(type: .prose, prompt: "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world."),
        BenchmarkPrompt(type: .prose, prompt: "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to do: once or twice she had peeped into the book her sister was reading,"),
        BenchmarkPrompt(type: .chat, prompt: "List the three primary colours, and name one thing that is usually each colour."),
        BenchmarkPrompt(type: .chat, prompt: "Explain in two sentences what a hash table is."),
        BenchmarkPrompt(type: .chat, prompt: "Write a Python function that checks whether a string is a palindrome."),
    ]

    /// Reads a prompts file: a JSON array of `{"type": "code|prose|chat", "prompt": "..."}`
    /// objects, or JSONL (one such object per line; blank lines are skipped).
    public static func load(path: String) throws(PromptFileError) -> [BenchmarkPrompt] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file"
            throw PromptFileError(path: path, location: nil, reason: reason)
        }
        return try parse(data, path: path)
    }

    /// Parses the contents of a prompts file; `path` only names it in errors.
    public static func parse(_ data: Data, path: String) throws(PromptFileError) -> [BenchmarkPrompt] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw PromptFileError(path: path, location: nil, reason: "not UTF-8 text")
        }
        var prompts: [BenchmarkPrompt] = []
        if text.drop(while: \.isWhitespace).first == "[" {
            guard let entries = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [Any] else {
                throw PromptFileError(path: path, location: nil, reason: "not valid JSON (a file starting with '[' must be one JSON array)")
            }
            for (index, entry) in entries.enumerated() {
                prompts.append(try prompt(from: entry, path: path, location: "entry \(index + 1)"))
            }
        } else {
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard !line.allSatisfy(\.isWhitespace) else { continue }
                let location = "line \(index + 1)"
                guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) else {
                    throw PromptFileError(path: path, location: location, reason: "not valid JSON (JSONL needs one object per line)")
                }
                prompts.append(try prompt(from: entry, path: path, location: location))
            }
        }
        guard !prompts.isEmpty else {
            throw PromptFileError(path: path, location: nil, reason: #"no prompts; expected {"type": "code|prose|chat", "prompt": "..."} objects"#)
        }
        return prompts
    }

    private static func prompt(from entry: Any, path: String, location: String) throws(PromptFileError) -> BenchmarkPrompt {
        func failure(_ reason: String) -> PromptFileError { PromptFileError(path: path, location: location, reason: reason) }
        guard let object = entry as? [String: Any] else {
            throw failure(#"expected an object {"type": ..., "prompt": ...}, found \#(describe(entry))"#)
        }
        let types = PromptType.allCases.map { "\"\($0.rawValue)\"" }
        let expectedTypes = types.dropLast().joined(separator: ", ") + " or " + types.last!
        guard let typeValue = object["type"] else { throw failure(#"missing field "type" (\#(expectedTypes))"#) }
        guard let typeName = typeValue as? String, let type = PromptType(rawValue: typeName) else {
            throw failure(#"field "type": expected \#(expectedTypes), found \#(describe(typeValue))"#)
        }
        guard let promptValue = object["prompt"] else { throw failure(#"missing field "prompt""#) }
        guard let text = promptValue as? String else {
            throw failure(#"field "prompt": expected a string, found \#(describe(promptValue))"#)
        }
        guard !text.isEmpty else { throw failure(#"field "prompt": expected some text, found an empty string"#) }
        return BenchmarkPrompt(type: type, prompt: text)
    }

    /// A JSON value as an error message shows it.
    private static func describe(_ value: Any) -> String {
        switch value {
        case let string as String:
            let shown = string.count > 40 ? string.prefix(40) + "…" : Substring(string)
            return "\"\(shown)\""
        case is NSNull: return "null"
        // JSONSerialization gives booleans as NSNumber too.
        case is NSNumber: return "a number or boolean"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }
}
