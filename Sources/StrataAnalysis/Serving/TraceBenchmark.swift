import Foundation
import StrataEngine

/// A recorded sequence of requests to replay against a session (`strata bench --trace`).
public struct RequestTrace: Sendable, Codable {
    /// One request of a trace.
    public struct Request: Sendable, Codable {
        /// `edit` (the user text, with `{previous}` replaced by the previous edit's answer),
        /// `regenerate` (request `repeat`, 0-based, sent again verbatim) or `chat` (a user
        /// message; with `continue`, after the previous chat request's messages and answer).
        public var type: String
        public var user: String?
        public var repeatIndex: Int?
        public var continues: Bool?

        enum CodingKeys: String, CodingKey {
            case type, user
            case repeatIndex = "repeat"
            case continues = "continue"
        }
    }

    public var name: String
    public var description: String?
    public var requests: [Request]

    /// Reads a trace file, naming the file and the request on any error.
    public static func load(path: String) throws -> RequestTrace {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TraceError(path: path, reason: "cannot read the file")
        }
        let trace: RequestTrace
        do { trace = try JSONDecoder().decode(RequestTrace.self, from: data) } catch {
            throw TraceError(path: path, reason: "not a trace: \(error)")
        }
        for (index, request) in trace.requests.enumerated() {
            switch request.type {
            case "edit", "chat":
                guard request.user != nil else { throw TraceError(path: path, reason: "request \(index): \(request.type) needs \"user\"") }
            case "regenerate":
                guard let target = request.repeatIndex, target >= 0, target < index else {
                    throw TraceError(path: path, reason: "request \(index): regenerate needs \"repeat\", an earlier request's index")
                }
            default:
                throw TraceError(path: path, reason: "request \(index): unknown type '\(request.type)' (edit, regenerate or chat)")
            }
        }
        return trace
    }
}

/// Why a trace file could not be used.
public struct TraceError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Decode speed of one request type in one mode.
public struct TraceTypeResult: Sendable, Codable {
    public var type: String
    public var requests: Int
    public var generatedTokens: Int
    public var plainTokensPerSecond: Double
    public var speculativeTokensPerSecond: Double
    public var speedup: Double
    public var drafted: Int
    public var accepted: Int

    enum CodingKeys: String, CodingKey {
        case type, requests, drafted, accepted, speedup
        case generatedTokens = "generated_tokens"
        case plainTokensPerSecond = "plain_tokens_per_second"
        case speculativeTokensPerSecond = "speculative_tokens_per_second"
    }
}

/// `strata bench --trace`: the trace replayed plainly and speculatively, by request type.
public struct TraceReport: Sendable, Codable {
    public var trace: String
    public var draft: String
    public var byType: [TraceTypeResult]
    public var overall: TraceTypeResult
    /// Whether every request's output was the same in both modes (it must be).
    public var outputsIdentical: Bool

    enum CodingKeys: String, CodingKey {
        case trace, draft, overall
        case byType = "by_type"
        case outputsIdentical = "outputs_identical"
    }
}

/// Replays `trace` greedily on a fresh session per mode and round: plain decoding, then
/// speculation with `speculation` (its drafter sees this session's earlier prompts and
/// outputs), alternating for `repetitions` rounds. Decode time counts from each request's
/// first token; tokens/s per type is its tokens over its time, summed over the rounds.
public func runTraceBenchmark(
    transformer: Transformer, trace: RequestTrace, speculation: SpeculationParameters, maxTokens: Int,
    repetitions: Int, progress: (String) -> Void = { _ in }
) async throws -> TraceReport {
    struct Sample { var type: String; var tokens: [TokenID]; var seconds: Double; var stats: SpeculationStats? }
    var samples: [Bool: [Sample]] = [false: [], true: []]
    var identical = true
    var reference: [[TokenID]]?
    for round in 0..<repetitions {
        for speculative in [false, true] {
            let session = try ModelSession(transformer: transformer, options: SessionOptions(
                parallel: 1, speculation: speculative ? speculation : nil))
            var outputs: [[TokenID]] = []
            var answers: [String] = []
            var prompts: [SessionPrompt] = []
            var chat: [ChatMessage] = []
            var previousEdit = ""
            for (index, request) in trace.requests.enumerated() {
                progress("round \(round + 1), \(speculative ? "speculative" : "plain"), request \(index + 1)/\(trace.requests.count)")
                let prompt: SessionPrompt
                switch request.type {
                case "regenerate":
                    prompt = prompts[request.repeatIndex ?? 0]
                case "chat":
                    if request.continues != true { chat = [] } else if let last = answers.last { chat.append(ChatMessage(role: "assistant", content: last)) }
                    chat.append(ChatMessage(role: "user", content: request.user ?? ""))
                    prompt = .chat(chat)
                default:
                    prompt = .chat([ChatMessage(role: "user", content: (request.user ?? "").replacingOccurrences(of: "{previous}", with: previousEdit))])
                }
                prompts.append(prompt)
                var text = ""
                var result: SessionResult?
                for try await event in try session.generate(SessionRequest(prompt: prompt, maxTokens: maxTokens)) {
                    switch event {
                    case .text(let piece, _): text += piece
                    case .finished(let finished): result = finished
                    case .started: break
                    }
                }
                guard let result else { throw CancellationError() }
                if request.type == "edit" { previousEdit = text }
                answers.append(text)
                outputs.append(result.tokens)
                // the first token is decided by the prompt pass, which speculation does not change
                samples[speculative, default: []].append(Sample(
                    type: request.type, tokens: Array(result.tokens.dropFirst()), seconds: result.decodeSeconds,
                    stats: result.speculation))
            }
            await session.shutdown(cancelRunning: true)
            if let reference { identical = identical && reference == outputs } else { reference = outputs }
        }
    }
    func summary(_ type: String, _ filter: (Sample) -> Bool) -> TraceTypeResult {
        let plain = samples[false, default: []].filter(filter)
        let fast = samples[true, default: []].filter(filter)
        let plainRate = Double(plain.reduce(0) { $0 + $1.tokens.count }) / max(1e-9, plain.reduce(0) { $0 + $1.seconds })
        let fastRate = Double(fast.reduce(0) { $0 + $1.tokens.count }) / max(1e-9, fast.reduce(0) { $0 + $1.seconds })
        return TraceTypeResult(
            type: type, requests: plain.count / max(1, repetitions), generatedTokens: plain.reduce(0) { $0 + $1.tokens.count + 1 } / max(1, repetitions),
            plainTokensPerSecond: plainRate, speculativeTokensPerSecond: fastRate, speedup: plainRate > 0 ? fastRate / plainRate : 0,
            drafted: fast.reduce(0) { $0 + ($1.stats?.drafted ?? 0) }, accepted: fast.reduce(0) { $0 + ($1.stats?.accepted ?? 0) })
    }
    var types: [String] = []
    for request in trace.requests where !types.contains(request.type) { types.append(request.type) }
    // described as the session runs it: with the history of earlier requests attached
    var described = speculation.drafter
    described.attach(history: TokenHistory(budget: 2))
    return TraceReport(
        trace: trace.name, draft: described.description,
        byType: types.map { type in summary(type) { $0.type == type } }, overall: summary("all") { _ in true },
        outputsIdentical: identical)
}
