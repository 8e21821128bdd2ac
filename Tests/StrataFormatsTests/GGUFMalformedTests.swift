import Foundation
import StrataKernels
import Testing
@testable import StrataFormats

/// Hand-built GGUF bytes, for files the writer would refuse to produce.
struct RawGGUF {
    var encoder = GGUFEncoder()

    init(magic: String = "GGUF", version: UInt32 = 3, tensorCount: UInt64, keyCount: UInt64) {
        encoder.append(Array(magic.utf8))
        encoder.append(version)
        encoder.append(tensorCount)
        encoder.append(keyCount)
    }

    mutating func key(_ key: String, type: UInt32, value: (inout GGUFEncoder) -> Void) {
        encoder.append(key)
        encoder.append(type)
        value(&encoder)
    }

    mutating func tensor(_ name: String, dimensions: [UInt64], type: UInt32, offset: UInt64) {
        encoder.append(name)
        encoder.append(UInt32(dimensions.count))
        for dimension in dimensions { encoder.append(dimension) }
        encoder.append(type)
        encoder.append(offset)
    }

    /// Pads to `alignment` and appends `count` bytes of tensor data.
    mutating func data(_ count: Int, alignment: Int = 32) {
        encoder.append([UInt8](repeating: 0, count: (alignment - encoder.bytes.count % alignment) % alignment))
        encoder.append([UInt8](repeating: 0x5A, count: count))
    }

    var bytes: [UInt8] { encoder.bytes }
}

func parse(_ bytes: [UInt8]) throws -> GGUFFile {
    try GGUFFile(bytes: ByteView(ByteStorage.copying(bytes)), path: "bad.gguf")
}

/// Expects parsing to fail with a message naming the file and containing every fragment.
func expectFailure(_ bytes: [UInt8], mentions fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    let error = #expect(throws: FormatError.self, sourceLocation: sourceLocation) { try parse(bytes) }
    guard let error else { return }
    #expect(error.description.hasPrefix("bad.gguf: "), sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(error.description.contains(fragment), "\(error.description)", sourceLocation: sourceLocation)
    }
}

/// A file with one valid tensor info described by the arguments, and enough data after it.
func oneTensor(_ name: String = "blk.0.w", dimensions: [UInt64], type: UInt32, offset: UInt64 = 0, data: Int = 64) -> [UInt8] {
    var raw = RawGGUF(tensorCount: 1, keyCount: 0)
    raw.tensor(name, dimensions: dimensions, type: type, offset: offset)
    raw.data(data)
    return raw.bytes
}

@Suite struct GGUFMalformedHeaderTests {
    @Test func shortFilesSayHowShort() {
        expectFailure([], mentions: ["file is 0 bytes", "shorter than a GGUF header"])
        expectFailure(Array("GGU".utf8), mentions: ["file is 3 bytes"])
        expectFailure(Array(RawGGUF(tensorCount: 0, keyCount: 0).bytes.prefix(12)), mentions: ["file is 12 bytes"])
    }

    @Test func wrongMagicSaysWhatWasFound() {
        expectFailure(RawGGUF(magic: "GGML", tensorCount: 0, keyCount: 0).bytes,
                      mentions: ["not a GGUF file", "expected magic \"GGUF\"", "found \"GGML\"", "47 47 4D 4C"])
    }

    @Test func versionOneAndUnknownVersionsAreRejected() {
        expectFailure(RawGGUF(version: 1, tensorCount: 0, keyCount: 0).bytes,
                      mentions: ["GGUF version 1 is not supported", "expected version 2 or 3"])
        expectFailure(RawGGUF(version: 7, tensorCount: 0, keyCount: 0).bytes,
                      mentions: ["unsupported GGUF version 7", "expected 2 or 3"])
        expectFailure(RawGGUF(version: UInt32(3).byteSwapped, tensorCount: 0, keyCount: 0).bytes,
                      mentions: ["big-endian"])
    }

    @Test func versionTwoIsAccepted() throws {
        let file = try parse(RawGGUF(version: 2, tensorCount: 0, keyCount: 0).bytes)
        #expect(file.version == 2)
        #expect(file.tensors.isEmpty && file.metadata.keys.isEmpty)
    }

    @Test func countsLargerThanTheFileFailBeforeAllocating() {
        expectFailure(RawGGUF(tensorCount: .max, keyCount: 0).bytes,
                      mentions: ["tensor count is 18446744073709551615", "hold at most 0"])
        expectFailure(RawGGUF(tensorCount: 0, keyCount: 1 << 40).bytes,
                      mentions: ["metadata key-value count is 1099511627776"])

        var longKey = RawGGUF(tensorCount: 0, keyCount: 1)
        longKey.encoder.append(UInt64(1) << 62)
        longKey.encoder.append([UInt8](repeating: 65, count: 20))
        expectFailure(longKey.bytes, mentions: ["length of key of metadata entry 0 is 4611686018427387904"])

        var hugeArray = RawGGUF(tensorCount: 0, keyCount: 1)
        hugeArray.key("tokenizer.ggml.tokens", type: 9) { value in
            value.append(UInt32(8))
            value.append(UInt64.max / 2)
        }
        expectFailure(hugeArray.bytes, mentions: ["element count of array 'tokenizer.ggml.tokens'"])

        var longString = RawGGUF(tensorCount: 0, keyCount: 1)
        longString.key("general.name", type: 8) { value in value.append(UInt64(1_000)) }
        expectFailure(longString.bytes, mentions: ["string value of key 'general.name'"])
    }
}

@Suite struct GGUFMalformedMetadataTests {
    @Test func unknownValueTypesNameTheKey() {
        var raw = RawGGUF(tensorCount: 0, keyCount: 1)
        raw.key("general.mystery", type: 13) { value in value.append(UInt64(0)) }
        expectFailure(raw.bytes, mentions: ["metadata key 'general.mystery' has unknown value type 13", "0...12"])

        var array = RawGGUF(tensorCount: 0, keyCount: 1)
        array.key("general.list", type: 9) { value in
            value.append(UInt32(99))
            value.append(UInt64(1))
        }
        expectFailure(array.bytes, mentions: ["array element of key 'general.list' has unknown value type 99"])
    }

    @Test func duplicateKeysAreRejected() {
        var raw = RawGGUF(tensorCount: 0, keyCount: 2)
        raw.key("general.name", type: 4) { value in value.append(UInt32(1)) }
        raw.key("general.name", type: 4) { value in value.append(UInt32(2)) }
        expectFailure(raw.bytes, mentions: ["duplicate metadata key 'general.name'"])
    }

    @Test func invalidUTF8IsRejectedNamingTheKey() {
        var raw = RawGGUF(tensorCount: 0, keyCount: 1)
        raw.key("general.name", type: 8) { value in
            value.append(UInt64(2))
            value.append([0xC3, 0x28])
        }
        expectFailure(raw.bytes, mentions: ["string value of key 'general.name' is not valid UTF-8"])

        var key = RawGGUF(tensorCount: 0, keyCount: 1)
        key.encoder.append(UInt64(1))
        key.encoder.append([0xFF])
        key.encoder.append(UInt32(0))
        key.encoder.append(UInt8(0))
        expectFailure(key.bytes, mentions: ["key of metadata entry 0 is not valid UTF-8"])
    }

    @Test func boolBytesOtherThanZeroOrOneAreRejected() {
        var raw = RawGGUF(tensorCount: 0, keyCount: 1)
        raw.key("tokenizer.ggml.add_bos_token", type: 7) { value in value.append(UInt8(2)) }
        expectFailure(raw.bytes, mentions: ["'tokenizer.ggml.add_bos_token'", "bool byte is 2"])
    }

    @Test func alignmentMustBeAPowerOfTwoInteger() {
        for (type, encode, found) in [
            (UInt32(4), { (value: inout GGUFEncoder) in value.append(UInt32(48)) }, "uint32 48"),
            (UInt32(4), { (value: inout GGUFEncoder) in value.append(UInt32(0)) }, "uint32 0"),
            (UInt32(8), { (value: inout GGUFEncoder) in value.append("32") }, "string \"32\""),
        ] {
            var raw = RawGGUF(tensorCount: 0, keyCount: 1)
            raw.key("general.alignment", type: type, value: encode)
            expectFailure(raw.bytes, mentions: ["'general.alignment'", "power of two", found])
        }
    }

    @Test func deeplyNestedArraysFailInsteadOfOverflowingTheStack() {
        var raw = RawGGUF(tensorCount: 0, keyCount: 1)
        raw.encoder.append("deep")
        raw.encoder.append(UInt32(9))
        for _ in 0..<10_000 {
            raw.encoder.append(UInt32(9))
            raw.encoder.append(UInt64(1))
        }
        expectFailure(raw.bytes, mentions: ["metadata key 'deep'", "nested deeper than"])
    }
}

@Suite struct GGUFMalformedTensorTests {
    @Test func unknownTensorTypeNamesTheTensor() {
        expectFailure(oneTensor(dimensions: [32], type: 99),
                      mentions: ["tensor 'blk.0.w' has unknown GGML type id 99"])
    }

    @Test func dimensionCountMustBeOneToFour() {
        expectFailure(oneTensor(dimensions: [], type: 0), mentions: ["tensor 'blk.0.w' has 0 dimensions", "1...4"])
        expectFailure(oneTensor(dimensions: [1, 1, 1, 1, 1], type: 0), mentions: ["has 5 dimensions"])
    }

    @Test func dimensionsMustBePositiveAndSane() {
        expectFailure(oneTensor(dimensions: [32, 0], type: 0),
                      mentions: ["tensor 'blk.0.w': dimension 1 is 0", "expected 1..."])
        expectFailure(oneTensor(dimensions: [1 << 63], type: 0),
                      mentions: ["dimension 0 is 9223372036854775808"])
        expectFailure(oneTensor(dimensions: [1 << 32, 1 << 32, 1 << 32], type: 0),
                      mentions: ["tensor 'blk.0.w' shape [4294967296, 4294967296, 4294967296]", "fit in Int"])
        // Elements fit but bytes do not: 2^61 f32 values.
        expectFailure(oneTensor(dimensions: [1 << 31, 1 << 30], type: 0), mentions: ["fit in Int"])
    }

    @Test func rowsMustBeWholeBlocks() {
        expectFailure(oneTensor(dimensions: [48, 2], type: QuantFormat.q4_K.rawValue),
                      mentions: ["tensor 'blk.0.w'", "shape [48, 2] in Q4_K", "row length 48",
                                 "not a multiple of Q4_K's block size 256"])
    }

    @Test func misalignedOffsetsNameTensorOffsetAndAlignment() {
        expectFailure(oneTensor(dimensions: [4], type: 0, offset: 16),
                      mentions: ["tensor 'blk.0.w'", "data offset 16", "not a multiple of the alignment 32"])
    }

    @Test func tensorsPastTheEndNameTensorOffsetSizeAndFileSize() {
        let bytes = oneTensor(dimensions: [64], type: 0, offset: 32, data: 100)
        expectFailure(bytes, mentions: ["tensor 'blk.0.w'", "F32 [64]", "256 bytes at data offset 32",
                                        "past the end of the \(bytes.count)-byte file"])
        expectFailure(oneTensor(dimensions: [8], type: 0, offset: UInt64.max - 31),
                      mentions: ["tensor 'blk.0.w': data offset 18446744073709551584 is past the end"])
        expectFailure(oneTensor(dimensions: [8], type: 0, offset: 1 << 62),
                      mentions: ["tensor 'blk.0.w'", "data offset 4611686018427387904", "past the end"])
    }

    @Test func duplicateAndOverlappingTensorsAreRejected() {
        var duplicate = RawGGUF(tensorCount: 2, keyCount: 0)
        duplicate.tensor("w", dimensions: [8], type: 0, offset: 0)
        duplicate.tensor("w", dimensions: [8], type: 0, offset: 32)
        duplicate.data(64)
        expectFailure(duplicate.bytes, mentions: ["duplicate tensor name 'w'"])

        var overlap = RawGGUF(tensorCount: 2, keyCount: 0)
        overlap.tensor("a", dimensions: [16], type: 0, offset: 0)
        overlap.tensor("b", dimensions: [8], type: 0, offset: 32)
        overlap.data(96)
        expectFailure(overlap.bytes, mentions: ["tensors 'a'", "'b'", "overlap"])
    }
}

@Suite struct GGUFTruncationTests {
    /// A small file using every section: scalars, strings, nested arrays, two tensors.
    static func sample() throws -> [UInt8] {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("llama.block_count", .uint32(2))
        writer.set("llama.rope.freq_base", .float32(10_000))
        writer.set("tokenizer.ggml.add_bos_token", .bool(true))
        writer.set("tokenizer.ggml.tokens", .array([.string("a"), .string("bé"), .string("<s>")]))
        writer.set("test.nested", .array([.array([.int8(-1)]), .array([.uint64(9), .uint64(10)])]))
        try writer.addTensor(name: "token_embd.weight", shape: [32, 2], format: .q8_0,
                             data: (0..<68).map { UInt8($0) })
        try writer.addTensor(name: "output_norm.weight", shape: [5], format: .f32, data: [UInt8](repeating: 1, count: 20))
        return try writer.bytes()
    }

    @Test func everyTruncationFailsCleanly() throws {
        let full = try Self.sample()
        let complete = try parse(full)
        let last = try #require(complete.tensors.last)
        // The writer pads after the last tensor; cutting only that padding leaves a usable file.
        let requiredLength = complete.dataOffset + last.offset + last.byteCount
        for length in 0...full.count {
            let prefix = Array(full.prefix(length))
            if length >= requiredLength {
                let file = try parse(prefix)
                #expect(file.tensors == complete.tensors)
            } else {
                #expect(throws: FormatError.self, "length \(length)") { try parse(prefix) }
            }
        }
    }

    @Test func singleByteCorruptionOfTheHeaderNeverTraps() throws {
        let full = try Self.sample()
        let header = try parse(full).dataOffset
        for position in 0..<header {
            for replacement: UInt8 in [0x00, 0x01, 0x7F, 0xFF] where full[position] != replacement {
                var corrupted = full
                corrupted[position] = replacement
                // Either outcome is fine; a trap or hang here is the failure.
                _ = try? parse(corrupted)
            }
        }
    }
}

@Suite struct GGUFSpecialFileTests {
    /// Opening a FIFO for reading blocks until a writer comes; the reader must refuse it first.
    /// The open runs on its own thread and is waited for at most 10 seconds, so a regression
    /// fails the test instead of hanging the suite.
    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-fifo-\(UUID()).gguf").path
        try #require(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var message = ""
        Thread.detachNewThread {
            do { _ = try GGUFFile.open(path: path) } catch { message = "\(error)" }
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 10) == .success, "opening a FIFO blocked")
        #expect(message.contains("not a regular file"), "\(message)")
    }
}
