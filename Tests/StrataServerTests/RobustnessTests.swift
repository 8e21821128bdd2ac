import Foundation
import Hummingbird
import HummingbirdTesting
import StrataEngine
import StrataTestSupport
import Testing
@testable import StrataServer

/// Hostile and broken input: nothing crashes, every answer is a well-formed success or error,
/// and the server still answers a normal request afterwards.
@Suite struct RobustnessTests {
    static let chatBase = #"{"model": "scripted", "temperature": 0.5, "max_tokens": 4, "stop": ["x"], "stream": false, "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "strata": {"speculative": true, "draft": "ngram"}}"#
    static let completionBase = #"{"model": "scripted", "prompt": "Once upon", "top_p": 0.9, "seed": 3, "stream": true, "stream_options": {"include_usage": true}}"#

    /// Field names and values that exercise the decoder's type checks.
    static let keys = ["model", "messages", "prompt", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
                       "seed", "stream", "stream_options", "n", "logit_bias", "tools", "response_format", "strata", "role",
                       "content", "plan", "steps", "layer", "draft", "speculative", "echo", "suffix", "best_of"]
    static let values = ["null", "true", "false", "0", "-1", "1e309", "-0.0", "2", "9223372036854775808", "\"\"", "\"x\"",
                         "[]", "{}", "[null]", "[{}]", "{\"type\": \"text\"}", "\"\\u0000\"", "\"\\ud800\"", "1.5",
                         "[\"a\",\"b\",\"c\",\"d\",\"e\"]", "{\"layer_count\": 2, \"steps\": [{\"layer\": 7}]}",
                         String(repeating: "[", count: 600), "\"early-exit:-3\""]

    static func mutate(_ base: String, using random: inout SeededGenerator) -> String {
        var bytes = Array(base.utf8)
        switch Int.random(in: 0..<7, using: &random) {
        case 0:  // truncate
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
        case 1:  // flip a few bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case 2:  // delete a range
            let start = Int.random(in: 0..<bytes.count, using: &random)
            let end = min(bytes.count, start + Int.random(in: 1...12, using: &random))
            bytes.removeSubrange(start..<end)
        case 3:  // insert structural characters
            let pieces = Array("{}[]\",:\\ 0e-".utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                bytes.insert(pieces[Int.random(in: 0..<pieces.count, using: &random)], at: Int.random(in: 0...bytes.count, using: &random))
            }
        case 4:  // one top-level field with a hostile value
            let key = keys[Int.random(in: 0..<keys.count, using: &random)]
            let value = values[Int.random(in: 0..<values.count, using: &random)]
            return String(decoding: bytes.dropLast(), as: UTF8.self) + ", \"\(key)\": \(value)}"
        case 5:  // every value of a field of the base replaced: a nested hostile value
            let value = values[Int.random(in: 0..<values.count, using: &random)]
            let text = String(decoding: bytes, as: UTF8.self)
            let key = keys[Int.random(in: 0..<keys.count, using: &random)]
            return text.replacingOccurrences(of: "\"\(key)\": ", with: "\"\(key)\": \(value), \"_\": ")
        default:  // random bytes
            bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func randomAndMutatedBodies() async throws {
        try await withServer(ScriptedBackend(pieces: ["ok"]), configuration: ServerConfiguration(maxBodyBytes: 4_096)) { client in
            var random = SeededGenerator(seed: 21)
            let start = ContinuousClock.now
            var statuses: [Int: Int] = [:]
            for index in 0..<3_000 {
                // bounded in time as well as count, so a slow machine shortens the run instead of hanging it
                if ContinuousClock.now - start > .seconds(60) { break }
                let (endpoint, base) = index.isMultiple(of: 2)
                    ? ("/v1/chat/completions", Self.chatBase) : ("/v1/completions", Self.completionBase)
                let body = Self.mutate(base, using: &random)
                let answer = try await client.post(endpoint, body)
                statuses[answer.status.code, default: 0] += 1
                #expect([200, 400, 404, 413].contains(answer.status.code), "\(answer.status) for \(body)")
                if answer.status == .ok {
                    #expect(answer.body.hasPrefix("{") || answer.body.hasPrefix("data: "), "\(body)")
                } else {
                    #expect(answer.error["message"] is String, "\(answer.body) for \(body)")
                }
            }
            #expect(statuses[400, default: 0] > 100)
            #expect(try await client.post("/v1/chat/completions", Self.chatBase).status == .ok)
            #expect(try await client.post("/v1/completions", Self.completionBase).status == .ok)
        }
    }

    /// A client that goes away mid-stream: the write fails, the stream is dropped, and the
    /// backend sees its stream terminated (which is what cancels a session's generation).
    @Test func disconnectCancelsTheGeneration() async throws {
        struct Disconnected: Error {}
        struct FailingWriter: ResponseBodyWriter {
            var writesLeft: Int
            mutating func write(_ buffer: ByteBuffer) async throws {
                guard writesLeft > 0 else { throw Disconnected() }
                writesLeft -= 1
            }
            consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
        }
        let backend = ScriptedBackend(pieces: Array(repeating: "x", count: 1_000), delay: 0.01)
        let server = OpenAIServer(backend: backend)
        do {
            let events = try backend.generate(SessionRequest(prompt: .text("x")))
            let response = server.streamingResponse(
                events, format: ChatFormat(header: ResponseHeader(prefix: "chatcmpl-", model: "scripted"), includeUsage: false))
            await #expect(throws: Disconnected.self) { try await response.body.write(FailingWriter(writesLeft: 3)) }
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while backend.cancelledStreams.withLock({ $0 }) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(backend.cancelledStreams.withLock { $0 } == 1)
    }
}
