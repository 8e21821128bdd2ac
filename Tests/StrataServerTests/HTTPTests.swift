import Foundation
import Hummingbird
import HummingbirdTesting
import StrataEngine
import Testing
@testable import StrataServer

/// The HTTP layer against a scripted backend: shapes, streaming framing, errors, validation.
@Suite struct HTTPTests {
    let chatBody = #"{"model": "scripted", "messages": [{"role": "user", "content": "Hi"}]}"#

    @Test func healthModelsAndMetrics() async throws {
        try await withServer(ScriptedBackend()) { client in
            let health = try await client.get("/health")
            #expect(health.status == .ok)
            #expect(health.json["status"] as? String == "ok")
            let models = try await client.get("/v1/models")
            #expect(models.json["object"] as? String == "list")
            let data = models.json["data"] as? [[String: Any]] ?? []
            #expect(data.count == 1)
            #expect(data.first?["id"] as? String == "scripted")
            #expect(data.first?["object"] as? String == "model")
            _ = try await client.post("/v1/chat/completions", chatBody)
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.body.contains("strata_prompt_tokens_total 5"))
            #expect(metrics.body.contains(#"strata_http_requests_total{endpoint="/v1/chat/completions",status="200"} 1"#))
            #expect(metrics.body.contains("strata_time_to_first_token_seconds_count 1"))
            #expect(metrics.body.contains("strata_queue_length"))
        }
    }

    @Test func chatCompletionShapeAndUsage() async throws {
        let backend = ScriptedBackend()
        try await withServer(backend) { client in
            let answer = try await client.post("/v1/chat/completions", chatBody)
            #expect(answer.status == .ok)
            let json = answer.json
            #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(json["object"] as? String == "chat.completion")
            #expect(json["model"] as? String == "scripted")
            #expect(json["created"] is Int)
            let choice = (json["choices"] as? [[String: Any]])?.first ?? [:]
            #expect(choice["index"] as? Int == 0)
            #expect(choice["finish_reason"] as? String == "stop")
            #expect(choice["logprobs"] is NSNull)
            let message = choice["message"] as? [String: Any] ?? [:]
            #expect(message["role"] as? String == "assistant")
            #expect(message["content"] as? String == "Hello, world")
            let usage = json["usage"] as? [String: Any] ?? [:]
            #expect(usage["prompt_tokens"] as? Int == 5)
            #expect(usage["completion_tokens"] as? Int == 3)
            #expect(usage["total_tokens"] as? Int == 8)
            #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 2)
            #expect((json["strata"] as? [String: Any])?["cached_prompt_tokens"] as? Int == 2)
        }
        let request = try #require(backend.requests.withLock { $0.first })
        #expect(request.prompt == .chat([ChatMessage(role: "user", content: "Hi")]))
        #expect(request.maxTokens == nil)
        #expect(request.sampling.temperature == 1)
        #expect(request.sampling.topK == 0)
        #expect(request.sampling.topP == 1)
        #expect(request.sampling.minP == 0)
    }

    @Test func samplingFieldsMapToTheSession() async throws {
        let backend = ScriptedBackend()
        try await withServer(backend) { client in
            let body = """
                {"model": "scripted", "temperature": 0, "top_p": 0.5, "max_completion_tokens": 7, "seed": -1,
                 "stop": ["a", "b"], "user": "someone", "metadata": {"x": "y"}, "store": false, "n": 1,
                 "presence_penalty": 0, "logprobs": false, "response_format": {"type": "text"}, "tools": [],
                 "messages": [{"role": "developer", "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief"}]},
                              {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
                """
            let answer = try await client.post("/v1/chat/completions", body)
            #expect(answer.status == .ok, "\(answer.body)")
        }
        let request = try #require(backend.requests.withLock { $0.first })
        #expect(request.sampling.temperature == 0)
        #expect(request.sampling.topP == 0.5)
        #expect(request.sampling.seed == UInt64.max)
        #expect(request.maxTokens == 7)
        #expect(request.stop == ["a", "b"])
        #expect(request.prompt == .chat([
            ChatMessage(role: "system", content: "Be brief"), ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello"),
        ]))
    }

    @Test func chatStreamFramingIsOpenAIs() async throws {
        try await withServer(ScriptedBackend(finishReason: .context)) { client in
            let body = #"{"model": "scripted", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]}"#
            let answer = try await client.post("/v1/chat/completions", body)
            #expect(answer.status == .ok)
            #expect(answer.headers[.contentType] == "text/event-stream")
            let events = try sseEvents(answer.body)
            #expect(events.count == 6)  // role, three pieces, finish, usage
            let ids = Set(events.compactMap { $0["id"] as? String })
            #expect(ids.count == 1)
            #expect(events.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            func choice(_ index: Int) -> [String: Any] { (events[index]["choices"] as? [[String: Any]])?.first ?? [:] }
            let first = choice(0)["delta"] as? [String: Any] ?? [:]
            #expect(first["role"] as? String == "assistant")
            #expect(first["content"] as? String == "")
            #expect(choice(0)["finish_reason"] is NSNull)
            #expect(events[0]["usage"] is NSNull)
            let texts = (1...3).map { (choice($0)["delta"] as? [String: Any])?["content"] as? String }
            #expect(texts == ["Hello", ",", " world"])
            #expect((choice(4)["delta"] as? [String: Any])?.isEmpty == true)
            #expect(choice(4)["finish_reason"] as? String == "length")  // a full context cut the text short
            #expect((events[5]["choices"] as? [Any])?.isEmpty == true)
            #expect((events[5]["usage"] as? [String: Any])?["completion_tokens"] as? Int == 3)
        }
    }

    @Test func streamWithoutUsageHasNoUsageChunk() async throws {
        try await withServer(ScriptedBackend()) { client in
            let body = #"{"model": "scripted", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}"#
            let events = try sseEvents(try await client.post("/v1/chat/completions", body).body)
            #expect(events.count == 5)
            #expect(events.allSatisfy { $0["usage"] == nil })
        }
    }

    @Test func textCompletionWholeAndStreamed() async throws {
        let backend = ScriptedBackend(finishReason: .length)
        try await withServer(backend) { client in
            let whole = try await client.post("/v1/completions", #"{"model": "scripted", "prompt": ["Once"]}"#)
            #expect(whole.status == .ok, "\(whole.body)")
            #expect(whole.json["object"] as? String == "text_completion")
            #expect((whole.json["id"] as? String)?.hasPrefix("cmpl-") == true)
            let choice = (whole.json["choices"] as? [[String: Any]])?.first ?? [:]
            #expect(choice["text"] as? String == "Hello, world")
            #expect(choice["finish_reason"] as? String == "length")
            #expect((whole.json["usage"] as? [String: Any])?["total_tokens"] as? Int == 8)

            let body = #"{"model": "scripted", "prompt": "Once", "stream": true, "stream_options": {"include_usage": true}}"#
            let events = try sseEvents(try await client.post("/v1/completions", body).body)
            #expect(events.count == 5)  // three pieces, finish, usage
            let texts = events.prefix(3).map { (($0["choices"] as? [[String: Any]])?.first?["text"] as? String) }
            #expect(texts == ["Hello", ",", " world"])
            #expect((events[3]["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "length")
            #expect((events[4]["usage"] as? [String: Any])?["prompt_tokens"] as? Int == 5)
        }
        let request = try #require(backend.requests.withLock { $0.first })
        #expect(request.prompt == .text("Once"))
        #expect(request.maxTokens == CompletionRequest.defaultMaxTokens)
    }

    @Test(arguments: [
        (#""n": 2"#, "n"), (#""best_of": 3"#, "best_of"), (#""logit_bias": {"50256": -100}"#, "logit_bias"),
        (#""logprobs": true"#, "logprobs"), (#""top_logprobs": 2"#, "top_logprobs"),
        (#""tools": [{"type": "function", "function": {"name": "f"}}]"#, "tools"), (#""tool_choice": "auto""#, "tool_choice"),
        (#""functions": [{"name": "f"}]"#, "functions"), (#""response_format": {"type": "json_object"}"#, "response_format"),
        (#""presence_penalty": 0.5"#, "presence_penalty"), (#""frequency_penalty": -1"#, "frequency_penalty"),
        (#""echo": true"#, "echo"), (#""suffix": "end""#, "suffix"),
    ])
    func refusedFieldsAreNamed(field: String, param: String) async throws {
        try await withServer(ScriptedBackend()) { client in
            for (endpoint, rest) in [("/v1/chat/completions", #""messages": [{"role": "user", "content": "Hi"}]"#),
                                     ("/v1/completions", #""prompt": "Hi""#)] {
                let answer = try await client.post(endpoint, #"{"model": "scripted", \#(rest), \#(field)}"#)
                #expect(answer.status == .badRequest)
                #expect(answer.error["param"] as? String == param)
                #expect(answer.error["type"] as? String == "invalid_request_error")
                #expect((answer.error["message"] as? String)?.contains(param) == true)
            }
        }
    }

    @Test(arguments: [
        (#"{"model": "scripted", "messages": "Hi"}"#, "messages"),
        (#"{"model": "scripted", "messages": [{"role": "user", "content": 5}]}"#, "messages[0].content"),
        (#"{"model": "scripted", "messages": [{"role": "user"}]}"#, "messages[0].content"),
        (#"{"model": "scripted", "messages": [{"content": "Hi"}]}"#, "messages[0].role"),
        (#"{"model": "scripted", "messages": [{"role": "tool", "content": "x"}]}"#, "messages[0].role"),
        (#"{"model": "scripted", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#, "messages[0].content[0].type"),
        (#"{"model": "scripted", "messages": []}"#, "messages"),
        (#"{"model": 3, "messages": [{"role": "user", "content": "Hi"}]}"#, "model"),
        (#"{"messages": [{"role": "user", "content": "Hi"}]}"#, "model"),
        (#"{"model": "scripted", "temperature": "hot", "messages": [{"role": "user", "content": "Hi"}]}"#, "temperature"),
        (#"{"model": "scripted", "temperature": 2.5, "messages": [{"role": "user", "content": "Hi"}]}"#, "temperature"),
        (#"{"model": "scripted", "top_p": 1.5, "messages": [{"role": "user", "content": "Hi"}]}"#, "top_p"),
        (#"{"model": "scripted", "max_tokens": 0, "messages": [{"role": "user", "content": "Hi"}]}"#, "max_tokens"),
        (#"{"model": "scripted", "stop": ["a", "b", "c", "d", "e"], "messages": [{"role": "user", "content": "Hi"}]}"#, "stop"),
        (#"{"model": "scripted", "stop": 7, "messages": [{"role": "user", "content": "Hi"}]}"#, "stop"),
        (#"{"model": "scripted", "stop": ["a", 7], "messages": [{"role": "user", "content": "Hi"}]}"#, "stop[1]"),
        (#"{"model": "scripted", "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]}"#, "stream_options"),
        (#"{"model": "scripted", "strata": {"draft": "ngram"}, "messages": [{"role": "user", "content": "Hi"}]}"#, "strata.speculative"),
        (#"{"model": "scripted", "strata": {"speculative": true, "draft": "early-exit:9"}, "messages": [{"role": "user", "content": "Hi"}]}"#, "strata.draft"),
        (#"{"model": "scripted", "strata": {"speculative": true, "draft": "/etc/passwd"}, "messages": [{"role": "user", "content": "Hi"}]}"#, "strata.draft"),
        (#"{"model": "scripted", "strata": {"speculative": true, "max_draft": 9}, "messages": [{"role": "user", "content": "Hi"}]}"#, "strata.max_draft"),
        (#"{"model": "scripted", "strata": {"plan": {"layer_count": "x"}}, "messages": [{"role": "user", "content": "Hi"}]}"#, "strata.plan.layer_count"),
    ])
    func invalidChatRequestsNameTheField(body: String, param: String) async throws {
        try await withServer(ScriptedBackend()) { client in
            let answer = try await client.post("/v1/chat/completions", body)
            #expect(answer.status == .badRequest, "\(answer.body)")
            #expect(answer.error["param"] as? String == param, "\(answer.body)")
            #expect(answer.error["type"] as? String == "invalid_request_error")
        }
    }

    @Test func malformedJSONAndWrongPromptType() async throws {
        try await withServer(ScriptedBackend()) { client in
            let broken = try await client.post("/v1/chat/completions", #"{"model": "scripted", "messages": ["#)
            #expect(broken.status == .badRequest)
            #expect(broken.error["code"] as? String == "invalid_json")
            #expect(broken.error.keys.sorted() == ["code", "message", "param", "type"])
            #expect(broken.error["param"] is NSNull)
            let twoPrompts = try await client.post("/v1/completions", #"{"model": "scripted", "prompt": ["a", "b"]}"#)
            #expect(twoPrompts.status == .badRequest)
            #expect(twoPrompts.error["param"] as? String == "prompt")
            let notText = try await client.post("/v1/completions", #"{"model": "scripted", "prompt": [1, 2]}"#)
            #expect(notText.error["param"] as? String == "prompt[0]")
        }
    }

    @Test func strataExtensionReachesTheSession() async throws {
        let backend = ScriptedBackend()
        try await withServer(backend) { client in
            let body = """
                {"model": "scripted", "prompt": "x", "strata": {"speculative": true, "draft": "early-exit:2", "max_draft": 4,
                 "plan": {"layer_count": 4, "steps": [{"layer": 0}, {"layer": 3}]}}}
                """
            let speculative = try await client.post("/v1/completions", body)
            #expect(speculative.status == .ok, "\(speculative.body)")
            let plain = try await client.post("/v1/completions", #"{"model": "scripted", "prompt": "x", "strata": {"speculative": false}}"#)
            #expect(plain.status == .ok)
        }
        let requests = backend.requests.withLock { $0 }
        #expect(requests.first?.plan?.steps.map(\.layer) == [0, 3])
        guard case .on(let parameters) = requests.first?.speculation else {
            Issue.record("speculation not on")
            return
        }
        #expect(parameters.maxDraft == 4)
        #expect(parameters.drafter.description == DraftSource.earlyExit(layers: 2).description)
        guard case .off = requests.last?.speculation else {
            Issue.record("speculation not off")
            return
        }
    }

    @Test func unknownModelIs404() async throws {
        try await withServer(ScriptedBackend()) { client in
            let answer = try await client.post("/v1/chat/completions", #"{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}"#)
            #expect(answer.status == .notFound)
            #expect(answer.error["code"] as? String == "model_not_found")
            #expect(answer.error["param"] as? String == "model")
            let route = try await client.get("/v1/nothing")
            #expect(route.status == .notFound)
            #expect(route.error["type"] as? String == "not_found_error")
        }
    }

    @Test func apiKeyIsRequired() async throws {
        let configuration = ServerConfiguration(apiKey: "sesame")
        try await withServer(ScriptedBackend(), configuration: configuration) { client in
            let missing = try await client.post("/v1/chat/completions", chatBody)
            #expect(missing.status == .unauthorized)
            #expect(missing.error["type"] as? String == "authentication_error")
            for wrong in ["Bearer sesam", "Bearer sesame2", "Bearer SESAME", "sesame", "Basic sesame", "Bearer "] {
                let answer = try await client.post("/v1/chat/completions", chatBody, headers: [.authorization: wrong])
                #expect(answer.status == .unauthorized, "\(wrong)")
            }
            #expect(try await client.get("/v1/models").status == .unauthorized)
            #expect(try await client.get("/metrics").status == .unauthorized)
            #expect(try await client.get("/health").status == .ok)
            let right = try await client.post("/v1/chat/completions", chatBody, headers: [.authorization: "Bearer sesame"])
            #expect(right.status == .ok)
        }
        #expect(constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEqual(Array("abcd".utf8), Array("abc".utf8)))
        #expect(!constantTimeEqual([], Array("abc".utf8)))
    }

    @Test func bodyOverTheLimitIs413() async throws {
        try await withServer(ScriptedBackend(), configuration: ServerConfiguration(maxBodyBytes: 100)) { client in
            let long = #"{"model": "scripted", "messages": [{"role": "user", "content": "\#(String(repeating: "a", count: 200))"}]}"#
            let answer = try await client.post("/v1/chat/completions", long)
            #expect(answer.status == .contentTooLarge)
            #expect(answer.error["type"] as? String == "invalid_request_error")
            #expect(try await client.post("/v1/chat/completions", chatBody).status == .ok)
        }
    }

    @Test func sessionRefusalsMapToStatuses() async throws {
        let cases: [(SessionError, HTTPResponse.Status, String, String?)] = [
            (.queueFull(limit: 3), .tooManyRequests, "rate_limit_error", nil),
            (.shutDown, .serviceUnavailable, "server_error", nil),
            (.promptTooLong(promptTokens: 70, contextLength: 64), .badRequest, "invalid_request_error", "messages"),
            (.maxTokensBeyondContext(maxTokens: 100, available: 20), .badRequest, "invalid_request_error", "max_tokens"),
        ]
        for (refusal, status, type, param) in cases {
            try await withServer(ScriptedBackend(refusal: refusal)) { client in
                let answer = try await client.post("/v1/chat/completions", chatBody)
                #expect(answer.status == status)
                #expect(answer.error["type"] as? String == type)
                #expect(answer.error["param"] as? String == param)
                #expect(answer.error["message"] as? String == refusal.description)
                if status == .tooManyRequests { #expect(answer.headers[.retryAfter] == "1") }
            }
        }
        // the message says how many tokens fit
        #expect(SessionError.promptTooLong(promptTokens: 70, contextLength: 64).description.contains("63"))
        try await withServer(ScriptedBackend(refusal: .promptTooLong(promptTokens: 70, contextLength: 64))) { client in
            let answer = try await client.post("/v1/completions", #"{"model": "scripted", "prompt": "long"}"#)
            #expect(answer.error["param"] as? String == "prompt")
        }
    }

    @Test(arguments: [ScriptedBackend(finishReason: .cancelled), ScriptedBackend(failure: .shutDown)])
    func shutdownDuringGenerationIs503(backend: ScriptedBackend) async throws {
        try await withServer(backend) { client in
            #expect(try await client.post("/v1/chat/completions", chatBody).status == .serviceUnavailable)
            let body = #"{"model": "scripted", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}"#
            let events = try sseEvents(try await client.post("/v1/chat/completions", body).body)
            #expect((events.last?["error"] as? [String: Any])?["code"] as? String == "shutting_down")
        }
    }
}
