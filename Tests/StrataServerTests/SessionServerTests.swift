import Foundation
import Hummingbird
import HummingbirdTesting
import StrataEngine
import StrataTestSupport
import Testing
@testable import StrataServer

/// The server over a real `ModelSession`: greedy answers equal the `Generator`'s, streamed text
/// equals whole text, usage counts are the tokens', and the context limits are 400s.
@Suite(.serialized) struct SessionServerTests {
    /// A server over a fresh session on `model`, named `name`.
    static func withSessionServer<Value: Sendable>(
        _ model: TestModel, name: String, options: SessionOptions = SessionOptions(parallel: 2),
        _ test: @Sendable (any TestClientProtocol, ModelSession) async throws -> Value
    ) async throws -> Value {
        let session = try ModelSession(transformer: try model.transformer(numerics: .fast), options: options)
        let server = OpenAIServer(backend: SessionBackend(session: session, name: name))
        let result = try await Application(router: server.makeRouter()).test(.router) { client in try await test(client, session) }
        await session.shutdown(cancelRunning: true)
        return result
    }

    /// The greedy tokens `Generator` gives for `prompt` (the chat template applied when `chat`).
    static func greedy(_ model: TestModel, prompt: String, chat: Bool, maxTokens: Int) throws -> (prompt: Int, tokens: [TokenID], text: String) {
        let transformer = try model.transformer(numerics: .fast)
        let promptTokens = try transformer.model.promptTokens(prompt, chat: chat)
        var generator = Generator(transformer: transformer, prompt: promptTokens,
                                  parameters: GenerationParameters(maxTokens: maxTokens, sampling: .greedy))
        var tokens: [TokenID] = []
        while let event = try generator.next() {
            if case .token(let token, _) = event { tokens.append(token) }
        }
        // the end-of-generation token is not text and is not counted in usage
        let visible = tokens.filter { !transformer.model.tokenizer.isEndOfGeneration($0) }
        return (promptTokens.count, visible, transformer.model.tokenizer.decode(visible))
    }

    static func chatBody(_ name: String, _ content: String, maxTokens: Int, stream: Bool = false) -> String {
        let encoded = String(decoding: (try? JSONEncoder().encode(content)) ?? Data("\"\"".utf8), as: UTF8.self)
        return #"{"model": "\#(name)", "temperature": 0, "max_tokens": \#(maxTokens), "stream": \#(stream), "stream_options": \#(stream ? #"{"include_usage": true}"# : "null"), "messages": [{"role": "user", "content": \#(encoded)}]}"#
    }

    static func streamedText(_ events: [[String: Any]]) -> String {
        events.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
    }

    static func checkGreedyChat(_ model: TestModel, name: String, prompt: String, maxTokens: Int) async throws {
        let expected = try greedy(model, prompt: prompt, chat: true, maxTokens: maxTokens)
        #expect(!expected.text.isEmpty)
        try await withSessionServer(model, name: name) { client, _ in
            let whole = try await client.post("/v1/chat/completions", chatBody(name, prompt, maxTokens: maxTokens))
            #expect(whole.status == .ok, "\(whole.body)")
            let choice = (whole.json["choices"] as? [[String: Any]])?.first ?? [:]
            #expect((choice["message"] as? [String: Any])?["content"] as? String == expected.text)
            let usage = whole.json["usage"] as? [String: Any] ?? [:]
            #expect(usage["prompt_tokens"] as? Int == expected.prompt)
            #expect(usage["completion_tokens"] as? Int == expected.tokens.count)
            #expect(choice["finish_reason"] as? String == (expected.tokens.count == maxTokens ? "length" : "stop"))

            let streamed = try await client.post("/v1/chat/completions", chatBody(name, prompt, maxTokens: maxTokens, stream: true))
            let events = try sseEvents(streamed.body)
            #expect(streamedText(events) == expected.text)
            #expect((events.last?["usage"] as? [String: Any])?["completion_tokens"] as? Int == expected.tokens.count)
        }
    }

    @Test func tinyModelGreedyChatEqualsGenerator() async throws {
        try await Self.checkGreedyChat(.tiny(.llama), name: "tiny", prompt: "the cat sat on the mat", maxTokens: 12)
    }

    @Test(.enabled(if: TestModels.isAvailable("smollm2-135m")))
    func smolLM2GreedyChatEqualsGenerator() async throws {
        try await Self.checkGreedyChat(.real("smollm2-135m"), name: "smollm2-135m", prompt: "What is the capital of France?", maxTokens: 16)
    }

    @Test func tinyModelTextCompletionAndLimits() async throws {
        let model = TestModel.tiny(.llama)
        let expected = try Self.greedy(model, prompt: "the cat", chat: false, maxTokens: 6)
        try await Self.withSessionServer(model, name: "tiny", options: SessionOptions(parallel: 2, contextLength: 32)) { client, _ in
            let answer = try await client.post("/v1/completions", #"{"model": "tiny", "prompt": "the cat", "temperature": 0, "max_tokens": 6}"#)
            #expect(answer.status == .ok, "\(answer.body)")
            #expect((answer.json["choices"] as? [[String: Any]])?.first?["text"] as? String == expected.text)

            let long = String(repeating: "the cat sat on the mat ", count: 40)
            let tooLong = try await client.post("/v1/completions", #"{"model": "tiny", "prompt": "\#(long)"}"#)
            #expect(tooLong.status == .badRequest)
            #expect(tooLong.error["param"] as? String == "prompt")
            #expect((tooLong.error["message"] as? String)?.contains("31") == true, "\(tooLong.body)")

            let beyond = try await client.post("/v1/completions", #"{"model": "tiny", "prompt": "the cat", "max_tokens": 100}"#)
            #expect(beyond.status == .badRequest)
            #expect(beyond.error["code"] as? String == "context_length_exceeded")

            // a speculative request gives the same greedy text and reports its counts
            let speculative = try await client.post("/v1/completions", #"{"model": "tiny", "prompt": "the cat", "temperature": 0, "max_tokens": 6, "strata": {"speculative": true, "draft": "ngram"}}"#)
            #expect((speculative.json["choices"] as? [[String: Any]])?.first?["text"] as? String == expected.text)
            #expect((speculative.json["strata"] as? [String: Any])?["speculation"] is [String: Any])
        }
    }
}

/// Requests side by side on one session: each answer is what it would be alone (the kernels are
/// batch-invariant), and a seed reproduces a sampled answer.
@Suite(.serialized) struct ConcurrentRequestTests {
    @Test func concurrentAnswersEqualAnswersAlone() async throws {
        let prompts = ["the cat", "a dog ran", "the mat sat on", "one two three"]
        @Sendable func body(_ prompt: String, seed: Int?) -> String {
            #"{"model": "tiny", "prompt": "\#(prompt)", "max_tokens": 8, "temperature": \#(seed == nil ? 0 : 1)\#(seed.map { #", "seed": \#($0)"# } ?? "")}"#
        }
        @Sendable func text(_ answer: Answer) -> String? { (answer.json["choices"] as? [[String: Any]])?.first?["text"] as? String }
        try await SessionServerTests.withSessionServer(.tiny(.llama), name: "tiny", options: SessionOptions(parallel: 4)) { client, _ in
            var alone: [String?] = []
            for prompt in prompts { alone.append(text(try await client.post("/v1/completions", body(prompt, seed: nil)))) }
            let together = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for (index, prompt) in prompts.enumerated() {
                    group.addTask { (index, text(try await client.post("/v1/completions", body(prompt, seed: nil)))) }
                }
                var results = [String?](repeating: nil, count: prompts.count)
                for try await (index, answer) in group { results[index] = answer }
                return results
            }
            #expect(together == alone)
            #expect(alone.allSatisfy { $0 != nil })

            let first = text(try await client.post("/v1/completions", body("the cat", seed: 42)))
            let second = text(try await client.post("/v1/completions", body("the cat", seed: 42)))
            #expect(first != nil)
            #expect(first == second)
        }
    }
}
