import Foundation
import StrataEngine
import StrataFormats
import StrataTestSupport
import StrataTokenizer
import Testing

/// Locates fixtures and models and builds tokenizers from them, once per process.
enum TokenizerFixtures {
    /// A file under `Fixtures/`.
    static func url(_ relativePath: String) throws -> URL {
        let url = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures/\(relativePath)")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureError("missing fixture \(relativePath)")
        }
        return url
    }

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: url(relativePath), encoding: .utf8)
    }

    /// Tokenizer of one of llama.cpp's vocabulary-only GGUF files in `Fixtures/llama-cpp-vocab/`.
    static func llamaCppTokenizer(_ name: String) throws -> Tokenizer {
        try cache.tokenizer(for: url("llama-cpp-vocab/ggml-vocab-\(name).gguf").path)
    }

    /// Tokenizer of a real model (`smollm2-135m`, `qwen2.5-coder-0.5b`).
    static func modelTokenizer(_ name: String) throws -> Tokenizer {
        try cache.tokenizer(for: TestModels.require(name))
    }

    private static let cache = TokenizerCache()
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Building a 150k-token tokenizer takes a noticeable fraction of a second; share them.
private final class TokenizerCache: @unchecked Sendable {
    private let lock = NSLock()
    private var tokenizers: [String: Tokenizer] = [:]

    func tokenizer(for path: String) throws -> Tokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let tokenizer = tokenizers[path] { return tokenizer }
        let tokenizer = try Tokenizer(vocabulary: loadVocabulary(path))
        tokenizers[path] = tokenizer
        return tokenizer
    }
}

/// Reads a vocabulary the way the engine does.
func loadVocabulary(_ path: String) throws -> Vocabulary {
    try Vocabulary(gguf: GGUFFile.open(path: path))
}
