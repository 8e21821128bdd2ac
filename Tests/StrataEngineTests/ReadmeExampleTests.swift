import Foundation
import StrataEngine
import StrataTestSupport
import Testing

// README example begin
func answer(_ question: String, modelPath: String) async throws -> String {
    let model = try LanguageModel(path: modelPath)
    let session = try ModelSession(transformer: Transformer(model: model))
    let request = SessionRequest(
        prompt: .chat([ChatMessage(role: "user", content: question)]), maxTokens: 64,
        sampling: .greedy, stop: ["\n\n"])
    var reply = ""
    for try await event in try session.generate(request) {
        if case .text(let text, _) = event { reply += text }
    }
    await session.shutdown(cancelRunning: false)
    return reply
}
// README example end

/// The README's "Use Strata from Swift" example is this file's code: compiled with the tests,
/// run on a model, and compared with the README's text so the two cannot drift apart.
@Suite("README's Swift example")
struct ReadmeExampleTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("the README shows exactly the example compiled here")
    func readmeMatchesThisFile() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let marker = "<!-- swift-example: Tests/StrataEngineTests/ReadmeExampleTests.swift -->\n```swift\nimport StrataEngine\n\n"
        let start = try #require(readme.range(of: marker)).upperBound
        let block = String(readme[start...].prefix { _ in true })
        let shown = String(block[..<(try #require(block.range(of: "```\n")).lowerBound)])
        let begin = try #require(source.range(of: "// README example begin\n")).upperBound
        let end = try #require(source.range(of: "// README example end\n")).lowerBound
        #expect(shown == String(source[begin..<end]))
    }

    @Test("the example answers with the model's greedy reply, cut at the stop string")
    func exampleRuns() async throws {
        let question = "What is the capital of France?"
        let path = try TestModel.real("smollm2-135m").path()
        let reply = try await answer(question, modelPath: path)
        let model = try TestModel.real("smollm2-135m").load()
        var generator = Generator(
            transformer: Transformer(model: model), prompt: try model.promptTokens(question, chat: true),
            parameters: GenerationParameters(maxTokens: 64, sampling: .greedy))
        var expected = ""
        while let event = try generator.next() {
            switch event {
            case .token(_, let text), .text(let text): expected += text
            case .finished: break
            }
        }
        if let stop = expected.range(of: "\n\n") { expected = String(expected[..<stop.lowerBound]) }
        #expect(reply == expected)
        #expect(reply.contains("Paris"), "\(reply)")
    }
}
