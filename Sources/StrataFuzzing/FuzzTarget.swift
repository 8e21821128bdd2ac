import Foundation
import StrataEngine
import StrataFormats
import StrataKernels
import StrataServer
import StrataTokenizer

/// One reader of input from strangers that a fuzzer drives: a model file, a tokenizer's input,
/// a chat template, a plan file, an HTTP request body.
public enum FuzzTarget: String, CaseIterable, Sendable, CustomStringConvertible {
    /// The GGUF reader, then the model loader's consistency checks and, for a small model that
    /// loads, one forward step.
    case gguf
    /// A real vocabulary's tokenizer: encoding text, decoding ids, the streaming decoder.
    case tokenizer
    /// The chat-template parser and renderer, with arbitrary messages.
    case chatTemplate = "chat-template"
    /// The plan-file reader and the layer-list parser (`3,7-9`).
    case plan
    /// The server's request decoding and checks, and its error bodies.
    case request

    public var description: String { rawValue }

    /// Whether the target needs model files for their vocabularies.
    public var needsVocabulary: Bool { self == .tokenizer }
}

/// What the libFuzzer executables call for each input.
public enum FuzzDriver {
    /// The GGUF files whose vocabularies the tokenizer target uses: `STRATA_FUZZ_VOCABULARIES`
    /// (paths separated by colons), else SmolLM2 where `scripts/fetch-models.sh` puts it.
    public static var vocabularyModels: [String] {
        let environment = ProcessInfo.processInfo.environment
        if let paths = environment["STRATA_FUZZ_VOCABULARIES"], !paths.isEmpty {
            return paths.split(separator: ":").map(String.init)
        }
        let models = environment["STRATA_MODELS"] ?? (NSHomeDirectory() + "/.cache/strata/models")
        return [models + "/smollm2-135m.gguf"]
    }

    // libFuzzer calls in from one thread; the harness is made on the first input
    nonisolated(unsafe) private static var harness: FuzzHarness?

    /// Runs one input of `target`; a broken promise ends the process, which libFuzzer reports
    /// as a crash and saves the input.
    public static func run(_ target: FuzzTarget, _ bytes: [UInt8]) {
        if harness == nil {
            do {
                harness = try FuzzHarness(target: target, vocabularyModels: vocabularyModels)
            } catch {
                FileHandle.standardError.write(Data("fuzz-\(target): cannot start: \(error)\n".utf8))
                exit(2)
            }
        }
        let problems = harness?.run(bytes) ?? []
        if !problems.isEmpty { fatalError("fuzz-\(target): broken promise: \(problems.joined(separator: "; "))") }
    }
}

/// Why a harness cannot start.
public struct FuzzSetupError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Feeds bytes to one target's entry point. The fuzz executables and the default test tier
/// (which replays every committed seed) both go through here, so the harnesses cannot rot.
///
/// Input the reader refuses is the expected outcome: a thrown error is success. What counts
/// as a finding is a trap, a hang, unbounded memory, or a broken promise: `run` returns the
/// promises an input broke (decoding what was encoded gives other text, an error body that
/// is not JSON, ...), which the executables turn into crashes.
public struct FuzzHarness: Sendable {
    public let target: FuzzTarget
    private let tokenizers: [TokenizerEntry]

    /// - Parameter vocabularyModels: the GGUF files whose tokenizers the `tokenizer` target
    ///   uses (bits 1 and up of an input's first byte pick one).
    public init(target: FuzzTarget, vocabularyModels: [String] = []) throws {
        self.target = target
        guard target.needsVocabulary else {
            tokenizers = []
            return
        }
        guard !vocabularyModels.isEmpty else {
            throw FuzzSetupError(description: "the \(target) target needs a model file for its vocabulary")
        }
        tokenizers = try vocabularyModels.map { path in
            TokenizerEntry(tokenizer: try Tokenizer(vocabulary: Vocabulary(gguf: GGUFFile.open(path: path))))
        }
    }

    /// Runs one input; returns the promises it broke (empty when all held).
    public func run(_ bytes: [UInt8]) -> [String] {
        switch target {
        case .gguf: return ModelFileEntry.run(bytes)
        case .tokenizer:
            guard let mode = bytes.first, !tokenizers.isEmpty else { return [] }
            return tokenizers[Int(mode >> 1) % tokenizers.count].run(bytes)
        case .chatTemplate: return ChatTemplateEntry.run(bytes)
        case .plan: return PlanEntry.run(bytes)
        case .request: return RequestEntry.run(bytes)
        }
    }
}

/// A GGUF file from bytes, the model bound from it, and one step of it when it is small.
enum ModelFileEntry {
    /// Models up to this size also run one forward step: a file that loads must also run.
    static let forwardLimit = 1 << 20
    static let pool = WorkerPool(threadCount: 1)

    static func run(_ bytes: [UInt8]) -> [String] {
        let file: GGUFFile
        do {
            file = try GGUFFile(bytes: ByteView(ByteStorage.copying(bytes)), path: "fuzz-input.gguf")
        } catch {
            return []
        }
        var problems: [String] = []
        for tensor in file.tensors where file.dataOffset + tensor.offset + tensor.byteCount > bytes.count {
            problems.append("tensor \(tensor.name) reaches past the end of the file")
        }
        for key in file.metadata.keys { _ = file.metadata[key].map { String(describing: $0).prefix(80) } }
        let model: LanguageModel
        do {
            model = try LanguageModel(file: file)
        } catch {
            return problems
        }
        _ = model.tokenizer.decode(model.tokenizer.encode("Hello <|im_start|> world\n", addSpecial: true))
        if let source = model.chatTemplateSource, let template = try? ChatTemplate(source: source) {
            _ = try? template.render(messages: [ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        }
        guard bytes.count <= forwardLimit else { return problems }
        var transformer = Transformer(model: model, pool: pool)
        var cache = transformer.makeCache(capacity: 4)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        _ = try? transformer.forward(tokens: [0, 1], startPosition: 0, plan: plan, cache: &cache)
        return problems
    }
}

/// Text and id lists through a real tokenizer. Bit 0 of the first byte says what the rest is.
struct TokenizerEntry: Sendable {
    let tokenizer: Tokenizer
    let bytesWithoutTokens: Set<UInt8>
    /// What decoding an encoded non-empty text puts before it: SentencePiece's space prefix.
    let decodedPrefix: String
    let sentencePiece: Bool

    init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
        sentencePiece = tokenizer.vocabulary.model == "llama"
        bytesWithoutTokens = sentencePiece ? Self.bytesWithoutFallback(tokenizer) : Self.bytesWithoutTokens(tokenizer)
        decodedPrefix = sentencePiece && tokenizer.vocabulary.addSpacePrefix ? " " : ""
    }

    /// Bytes SentencePiece cannot fall back to: neither `<0xXX>` nor the byte itself is a token.
    static func bytesWithoutFallback(_ tokenizer: Tokenizer) -> Set<UInt8> {
        let tokens = Set(tokenizer.vocabulary.tokens)
        let hexDigits = Array("0123456789ABCDEF")
        return Set((0...255).filter { byte in
            !tokens.contains("<0x\(hexDigits[byte >> 4])\(hexDigits[byte & 15])>")
                && !(byte < 0x80 && tokens.contains(String(UnicodeScalar(UInt8(byte)))))
        }.map { UInt8($0) })
    }

    /// Bytes whose byte-level token the vocabulary lacks. Encoding drops them, as llama.cpp
    /// does (SmolLM2 has no token for the control bytes 4, 6, 19, 20, 22 and 29, among others).
    static func bytesWithoutTokens(_ tokenizer: Tokenizer) -> Set<UInt8> {
        let tokens = Set(tokenizer.vocabulary.tokens)
        var missing: Set<UInt8> = []
        // GPT-2's byte alphabet: printable bytes stand for themselves, the rest map to U+0100...
        var nextStandIn: UInt32 = 256
        for byte in 0...255 {
            let standsForItself = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            var scalarValue = UInt32(byte)
            if !standsForItself {
                scalarValue = nextStandIn
                nextStandIn += 1
            }
            if let scalar = Unicode.Scalar(scalarValue), !tokens.contains(String(scalar)) { missing.insert(UInt8(byte)) }
        }
        return missing
    }

    func run(_ bytes: [UInt8]) -> [String] {
        guard let mode = bytes.first else { return [] }
        let payload = Array(bytes.dropFirst())
        return mode & 1 == 0 ? text(payload) : ids(payload)
    }

    /// Both algorithms are lossless: decoding what was encoded gives the text back (behind
    /// SentencePiece's prefix space), and a literal (chat content) encodes as plain text
    /// whatever control-token spellings it holds.
    func text(_ payload: [UInt8]) -> [String] {
        let text = String(decoding: payload, as: UTF8.self)
        var problems: [String] = []
        let plain = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        if let id = plain.first(where: { $0 < 0 || Int($0) >= tokenizer.count }) {
            problems.append("encode made id \(id), outside the vocabulary of \(tokenizer.count)")
        }
        // U+FDD0 is the literal marker, which encode drops by design
        let hasMarker = text.unicodeScalars.contains { $0.value == 0xFDD0 }
        let representable = !text.utf8.contains { bytesWithoutTokens.contains($0) }
        // SentencePiece writes spaces as U+2581, so a U+2581 in the text decodes as a space
        // (llama.cpp and sentencepiece alike)
        // (scalar by scalar: a U+2581 followed by a combining mark is one Character)
        var expected = Array(text.utf8)
        if sentencePiece {
            let scalars = text.unicodeScalars.map { $0.value == 0x2581 ? " " : $0 }
            expected = Array(decodedPrefix.utf8) + Array(String(String.UnicodeScalarView(scalars)).utf8)
        }
        // bytes, not String ==, which would accept a canonically equivalent spelling
        if !hasMarker && representable && !text.isEmpty && Array(tokenizer.decode(plain).utf8) != expected {
            problems.append("decode(encode(text)) is not the text")
        }
        let literal = tokenizer.encode(tokenizer.literal(text), addSpecial: false, parseSpecial: true)
        if !hasMarker && literal != plain {
            problems.append("a literal encodes unlike plain text")
        }
        _ = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        return problems
    }

    /// Any ids, most inside the vocabulary, some outside it or negative: decoding never traps,
    /// and the streaming decoder's pieces add up to the whole decode, as it promises.
    func ids(_ payload: [UInt8]) -> [String] {
        var ids: [TokenID] = []
        var index = 0
        while index + 4 <= payload.count {
            let raw = UInt32(payload[index]) | UInt32(payload[index + 1]) << 8
                | UInt32(payload[index + 2]) << 16 | UInt32(payload[index + 3]) << 24
            ids.append(raw & 0x8000_0000 != 0 ? TokenID(bitPattern: raw) : TokenID(raw % UInt32(tokenizer.count + 8)))
            index += 4
        }
        var problems: [String] = []
        for skipSpecial in [false, true] {
            let whole = tokenizer.decode(ids, skipSpecial: skipSpecial)
            var decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecial: skipSpecial)
            var streamed = ""
            for id in ids { streamed += decoder.append(id) }
            streamed += decoder.finish()
            if Array(streamed.utf8) != Array(whole.utf8) {
                problems.append("streamed pieces differ from the whole decode (skipSpecial \(skipSpecial))")
            }
        }
        for id in ids.prefix(64) {
            _ = tokenizer.type(of: id)
            _ = tokenizer.isEndOfGeneration(id)
        }
        return problems
    }
}

/// A template, then messages: the fields are separated by NUL bytes (template, role, content,
/// role, content, ...).
enum ChatTemplateEntry {
    static func run(_ bytes: [UInt8]) -> [String] {
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard let source = fields.first, let template = try? ChatTemplate(source: source) else { return [] }
        var messages: [ChatMessage] = []
        var index = 1
        while index + 1 < fields.count {
            messages.append(ChatMessage(role: fields[index], content: fields[index + 1]))
            index += 2
        }
        _ = try? template.render(
            messages: messages, addGenerationPrompt: messages.count % 2 == 1, bosToken: "<s>", eosToken: "</s>",
            extraContext: ["enable_thinking": .bool(fields.count % 2 == 0)])
        return []
    }
}

/// The same bytes as a plan file and as a layer list.
enum PlanEntry {
    static func run(_ bytes: [UInt8]) -> [String] {
        var problems: [String] = []
        if let plan = try? LayerPlan.decode(Data(bytes), path: "fuzz-plan.json"),
           plan.layerCount >= 1, plan.layerCount <= 4_096, (try? plan.validate(layerCount: plan.layerCount)) != nil {
            let slots = plan.cacheSlots
            if slots.count != plan.steps.count || slots.contains(where: { $0 < 0 }) {
                problems.append("a valid plan gave cache slots \(slots.prefix(8)) for \(plan.steps.count) steps")
            }
            _ = try? plan.skipping(layers: [0], attention: [plan.layerCount - 1])
        }
        if let layers = try? LayerPlan.parseLayerList(String(decoding: bytes, as: UTF8.self)),
           let outside = layers.first(where: { $0 < 0 || $0 > LayerPlan.largestLayerIndex }) {
            problems.append("the layer list gave layer \(outside), outside 0...\(LayerPlan.largestLayerIndex)")
        }
        return problems
    }
}

/// The bytes as the body of both completion routes; every refusal must be an OpenAI error body.
enum RequestEntry {
    static let modelName = "fuzz-model"
    static let layerCount = 30

    static func run(_ bytes: [UInt8]) -> [String] {
        let body = Data(bytes)
        var problems: [String] = []
        for route in 0..<2 {
            do {
                let parsed = route == 0
                    ? try RequestParser.chat(body, modelName: modelName, layerCount: layerCount)
                    : try RequestParser.completion(body, modelName: modelName, layerCount: layerCount)
                if let maxTokens = parsed.session.maxTokens, maxTokens < 1 {
                    problems.append("a request with max_tokens \(maxTokens) was accepted")
                }
            } catch {
                let errorBody = RequestParser.errorBody(error)
                let object = (try? JSONSerialization.jsonObject(with: errorBody)) as? [String: Any]
                if object?["error"] as? [String: Any] == nil {
                    problems.append("an error body is not {\"error\": {...}}: \(String(decoding: errorBody.prefix(200), as: UTF8.self))")
                }
            }
        }
        return problems
    }
}
