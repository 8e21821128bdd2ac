import Foundation
import StrataFormats
import StrataKernels
import StrataTokenizer

/// Drafts with the first `depth` layers, a fitted map from their stream to the last layer's,
/// the final norm, and an output head over only the `vocabulary` most frequent tokens
/// (`docs/methods.md` section 9: Jump to Conclusions, FR-Spec). Cheaper than an early exit of
/// the same depth (the head costs `vocabulary / model vocabulary` of the full one) and closer
/// to the full model's output (the map). The full model verifies, so the output is unchanged:
/// the draft's distribution is zero outside its vocabulary, which the acceptance rule
/// `min(1, p/q)` and the residual `max(0, p - q)` account for.
///
/// When the verifier's plan starts with the draft's layers, verification reuses them, as for
/// `EarlyExitDrafter`: the map is part of the head, so the stream the layers leave is the
/// full model's.
public struct ShortcutDrafter: Drafter {
    public let depth: Int
    public let vocabulary: Int
    private var exit: EarlyExitDrafter

    /// `tokens`: the draft's vocabulary (distinct ids); `map`: the stream map after `depth` layers.
    public init(depth: Int, map: LinearMap, tokens: [TokenID]) {
        self.depth = depth
        vocabulary = tokens.count
        exit = EarlyExitDrafter(layers: depth, shortcut: (map, tokens))
    }

    public var description: String { "shortcut:\(depth):\(vocabulary)" }

    public mutating func prepare(for config: ModelConfig) throws {
        try exit.prepare(for: config)
        guard vocabulary <= config.vocabularySize else {
            throw GenerationError.invalidShortcut("the draft vocabulary of \(vocabulary) tokens exceeds the model's \(config.vocabularySize)")
        }
    }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        try exit.draft(request, transformer: &transformer, cache: &cache, stats: &stats)
    }

    public mutating func verificationStart(
        for tokens: [TokenID], at position: Int, transformer: inout Transformer, cache: inout KVCache
    ) throws -> VerificationStart? {
        try exit.verificationStart(for: tokens, at: position, transformer: &transformer, cache: &cache)
    }
}

/// What shortcut drafts of one model are made from, fitted once on calibration text and kept
/// in a file: the map after `depth` layers, and the tokens of the text by falling frequency.
public struct ShortcutDraftFit: Sendable {
    public var depth: Int
    /// The stream map after `depth` layers (site `.stream`).
    public var map: LinearMap
    /// Every token of the calibration text, most frequent first (ties: lower id first).
    public var tokensByFrequency: [TokenID]
    /// The model it was fitted for (informational) and the text it was fitted on.
    public var model: String
    public var text: String

    public init(depth: Int, map: LinearMap, tokensByFrequency: [TokenID], model: String, text: String) {
        self.depth = depth
        self.map = map
        self.tokensByFrequency = tokensByFrequency
        self.model = model
        self.text = text
    }

    /// A drafter scoring the `vocabulary` most frequent tokens (all of them, when the text had fewer).
    public func drafter(vocabulary: Int) -> ShortcutDrafter {
        ShortcutDrafter(depth: depth, map: map, tokens: Array(tokensByFrequency.prefix(vocabulary)))
    }

    /// The ids of `tokens` by falling count, ties by id; with `vocabularySize`, followed by every
    /// id the text lacks, in id order. BPE and SentencePiece vocabularies number their tokens
    /// roughly by how early (how often) they were merged or scored, so id order stands in for
    /// frequency where the calibration text is silent (code tokens, when it is prose).
    public static func tokensByFrequency(_ tokens: [TokenID], vocabularySize: Int? = nil) -> [TokenID] {
        var counts: [TokenID: Int] = [:]
        for token in tokens { counts[token, default: 0] += 1 }
        var ordered = counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map(\.key)
        if let vocabularySize {
            ordered += (0..<vocabularySize).lazy.map { TokenID($0) }.filter { counts[$0] == nil }
        }
        return ordered
    }

    /// Writes the fit as a GGUF file: the map as tensor `shortcut.map` (`Tᵀ`, f32) and the rest
    /// as metadata.
    public func write(to path: String, overwrite: Bool) throws {
        guard let matrix = map.matrix else { throw GenerationError.invalidShortcut("the shortcut map has no matrix to write") }
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("strata-shortcut"))
        writer.set("strata.shortcut.model", .string(model))
        writer.set("strata.shortcut.text", .string(text))
        writer.set("strata.shortcut.depth", .uint32(UInt32(depth)))
        writer.set("strata.shortcut.tokens", .array(tokensByFrequency.map { .int32($0) }))
        try writer.addTensor(name: "shortcut.map", shape: [matrix.columns, matrix.rows], format: .f32, data: matrix.bytes)
        try writer.write(to: path, overwrite: overwrite)
    }

    /// Reads a fit written by `write(to:overwrite:)`; errors name the file and what is wrong.
    public static func load(path: String) throws -> ShortcutDraftFit {
        do {
            let file = try GGUFFile.open(path: path)
            guard let info = file.tensor(named: "shortcut.map"), info.format == .f32, info.shape.count == 2,
                  info.shape[0] == info.shape[1],
                  let matrix = WeightMatrix(format: .f32, rows: info.shape[1], columns: info.shape[0], bytes: file.data(for: info))
            else { throw GenerationError.invalidShortcut("\(path): no square f32 tensor 'shortcut.map'") }
            let tokens = try file.metadata.integers("strata.shortcut.tokens").map { TokenID($0) }
            return ShortcutDraftFit(
                depth: try file.metadata.integer("strata.shortcut.depth"),
                map: LinearMap(name: "shortcut.map", site: .stream, matrix: matrix), tokensByFrequency: tokens,
                model: (try? file.metadata.string("strata.shortcut.model")) ?? "",
                text: (try? file.metadata.string("strata.shortcut.text")) ?? "")
        } catch let error as GenerationError {
            throw error
        } catch {
            throw GenerationError.invalidShortcut("\(path): \(error)")
        }
    }
}
