import Foundation
import StrataTokenizer
import Testing

/// llama.cpp's own tokenizer test vectors (`tests/test-tokenizer-0.cpp`): each `.inp` holds
/// strings separated by a marker line, each `.out` line the expected ids of one string,
/// produced with `add_special = false, parse_special = false`.
@Suite struct LlamaCppVectorTests {
    struct Vector {
        let text: String
        let ids: [TokenID]
    }

    static func vectors(_ name: String) throws -> [Vector] {
        // Split as bytes: Swift compares Characters, and "\r\n" is one Character.
        let inputBytes = try Array(Data(contentsOf: TokenizerFixtures.url("llama-cpp-vocab/ggml-vocab-\(name).gguf.inp")))
        let inputs = Self.split(inputBytes, separator: Array("\n__ggml_vocab_test__\n".utf8))
            .map { String(decoding: $0, as: UTF8.self) }
        let outputs = try TokenizerFixtures.text("llama-cpp-vocab/ggml-vocab-\(name).gguf.out")
            .split(separator: "\n", omittingEmptySubsequences: false)
        // The input file ends with the marker, leaving an empty last piece; the output file
        // ends with a newline.
        let texts = inputs.last == "" ? Array(inputs.dropLast()) : inputs
        let lines = outputs.last == "" ? Array(outputs.dropLast()) : outputs
        guard texts.count == lines.count else {
            throw FixtureError("\(name): \(texts.count) inputs but \(lines.count) outputs")
        }
        return zip(texts, lines).map { text, line in
            Vector(text: text, ids: line.split(separator: " ").map { TokenID($0)! })
        }
    }

    static func split(_ bytes: [UInt8], separator: [UInt8]) -> [ArraySlice<UInt8>] {
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        var position = 0
        while position + separator.count <= bytes.count {
            if bytes[position..<(position + separator.count)].elementsEqual(separator) {
                pieces.append(bytes[start..<position])
                position += separator.count
                start = position
            } else {
                position += 1
            }
        }
        pieces.append(bytes[start...])
        return pieces
    }

    @Test(arguments: ["gpt-2", "qwen2", "llama-bpe", "starcoder"])
    func matchesLlamaCpp(vocabulary name: String) throws {
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer(name)
        let vectors = try Self.vectors(name)
        #expect(vectors.count == 46)
        for vector in vectors {
            let ids = tokenizer.encode(vector.text, addSpecial: false, parseSpecial: false)
            #expect(ids == vector.ids, "\(name): \(vector.text.debugDescription)")
            // Byte-level BPE loses nothing, so decoding gives the text back.
            #expect(tokenizer.decode(ids) == vector.text, "\(name): \(vector.text.debugDescription)")
        }
    }

    /// SentencePiece-style vocabularies (`tokenizer.ggml.model = llama`): Llama 2's and
    /// Phi-3's. Byte fallback loses nothing either; decoding gives the text back behind the
    /// space these vocabularies put before it.
    @Test(arguments: ["llama-spm", "phi-3"])
    func matchesLlamaCppSentencePiece(vocabulary name: String) throws {
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer(name)
        #expect(tokenizer.vocabulary.model == "llama" && tokenizer.vocabulary.addSpacePrefix)
        let vectors = try Self.vectors(name)
        #expect(vectors.count == 46)
        for vector in vectors {
            let ids = tokenizer.encode(vector.text, addSpecial: false, parseSpecial: false)
            #expect(ids == vector.ids, "\(name): \(vector.text.debugDescription)")
            let expected = vector.text.isEmpty ? "" : " " + vector.text
            #expect(tokenizer.decode(ids) == expected, "\(name): \(vector.text.debugDescription)")
        }
    }

    /// Tokens are matched by their bytes, as llama.cpp matches them. Llama 2's vocabulary holds
    /// "ή" twice, as U+03AE and as U+1F75 (canonically equivalent, other bytes); a `String`-keyed
    /// lookup took them for one token, so text spelled U+03AE became the U+1F75 token and
    /// decoded to other bytes. (Found by the tokenizer fuzzer.)
    @Test func sentencePieceMatchesBytesNotEquivalentText() throws {
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer("llama-spm")
        let tokens = tokenizer.vocabulary.tokens
        let tonos = try #require(tokens.firstIndex { Array($0.utf8) == [0xCE, 0xAE] })
        let oxia = try #require(tokens.firstIndex { Array($0.utf8) == [0xE1, 0xBD, 0xB5] })
        for (index, text) in [(tonos, "\u{3AE}"), (oxia, "\u{1F75}")] {
            let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
            #expect(ids.last == TokenID(index), "\(text.unicodeScalars.map(\.value))")
            #expect(Array(tokenizer.decode(ids).utf8) == Array((" " + text).utf8))
        }
    }

    /// BOS comes first when asked for, and special tokens are found in the text; after one,
    /// the next text gets the space prefix again (llama.cpp's `is_prev_special`).
    @Test func sentencePieceSpecialTokens() throws {
        let tokenizer = try TokenizerFixtures.llamaCppTokenizer("phi-3")
        let user = try #require(tokenizer.vocabulary.tokens.firstIndex(of: "<|user|>"))
        let plain = tokenizer.encode("Hi", addSpecial: false, parseSpecial: false)
        let marked = tokenizer.encode("<|user|>Hi", addSpecial: true, parseSpecial: true)
        #expect(marked == [1, TokenID(user)] + plain)
        #expect(tokenizer.decode(marked, skipSpecial: true) == " Hi")
    }
}
