import StrataFormats
import StrataKernels
import Testing

/// The typed accessors: which stored types each accepts, and what their errors say.
@Suite struct GGUFMetadataTests {
    static func metadata(_ entries: [(String, GGUFValue)]) throws -> GGUFMetadata {
        var writer = GGUFWriter()
        for (key, value) in entries { writer.set(key, value) }
        return try GGUFFile(bytes: ByteView(ByteStorage.copying(try writer.bytes())), path: "meta.gguf").metadata
    }

    @Test func integerAcceptsEveryIntegerType() throws {
        let values: [GGUFValue] = [.uint8(7), .int8(7), .uint16(7), .int16(7), .uint32(7), .int32(7), .uint64(7), .int64(7)]
        let metadata = try Self.metadata(values.enumerated().map { ("k\($0.offset)", $0.element) })
        for index in values.indices { #expect(try metadata.integer("k\(index)") == 7) }
        #expect(try Self.metadata([("k", .int64(-3))]).integer("k") == -3)
    }

    @Test func integerRejectsBoolFloatAndOversizedValues() throws {
        let metadata = try Self.metadata([("flag", .bool(true)), ("ratio", .float32(0.5)), ("big", .uint64(.max))])
        let flag = #expect(throws: FormatError.self) { try metadata.integer("flag") }
        #expect(flag?.description == "meta.gguf: metadata key 'flag': expected an integer, found bool true")
        #expect(throws: FormatError.self) { try metadata.integer("ratio") }
        let big = #expect(throws: FormatError.self) { try metadata.integer("big") }
        #expect(big?.message.contains("found uint64 18446744073709551615, which does not fit in Int") == true)
    }

    @Test func floatAcceptsBothWidthsOnly() throws {
        let metadata = try Self.metadata([("single", .float32(1.5)), ("double", .float64(0.25)), ("whole", .uint32(3))])
        #expect(try metadata.float("single") == 1.5)
        #expect(try metadata.float("double") == 0.25)
        let whole = #expect(throws: FormatError.self) { try metadata.float("whole") }
        #expect(whole?.message == "metadata key 'whole': expected a float, found uint32 3")
    }

    @Test func stringsAndBools() throws {
        let metadata = try Self.metadata([("name", .string("SmolLM2")), ("flag", .bool(false))])
        #expect(try metadata.string("name") == "SmolLM2")
        #expect(try metadata.bool("flag") == false)
        let wrong = #expect(throws: FormatError.self) { try metadata.bool("name") }
        #expect(wrong?.message == "metadata key 'name': expected a bool, found string \"SmolLM2\"")
    }

    @Test func arraysConvertElementwise() throws {
        let metadata = try Self.metadata([
            ("tokens", .array([.string("a"), .string("b")])),
            ("types", .array([.int32(1), .int32(3)])),
            ("scores", .array([.float32(-1), .float32(2)])),
            ("empty", .array([])),
        ])
        #expect(try metadata.strings("tokens") == ["a", "b"])
        #expect(try metadata.integers("types") == [1, 3])
        #expect(try metadata.floats("scores") == [-1, 2])
        #expect(try metadata.strings("empty") == [])
        let wrong = #expect(throws: FormatError.self) { try metadata.strings("types") }
        #expect(wrong?.message == "metadata key 'types': expected an array of strings, found array of 2 int32 values")
        #expect(throws: FormatError.self) { try metadata.integers("tokens") }
    }

    @Test func missingKeysNameTheKeyAndExpectedType() throws {
        let metadata = try Self.metadata([("present", .uint32(1))])
        let missing = #expect(throws: FormatError.self) { try metadata.integer("llama.block_count") }
        #expect(missing?.description == "meta.gguf: missing metadata key 'llama.block_count' (expected an integer)")
        #expect(throws: FormatError.self) { try metadata.strings("tokenizer.ggml.tokens") }
    }

    @Test func optionalVariantsAreNilWhenAbsentAndThrowOnWrongType() throws {
        let metadata = try Self.metadata([
            ("s", .string("x")), ("i", .uint16(2)), ("f", .float64(1)), ("b", .bool(true)),
            ("ss", .array([.string("y")])), ("ii", .array([.uint8(1)])), ("ff", .array([.float64(3)])),
        ])
        #expect(try metadata.optionalString("s") == "x")
        #expect(try metadata.optionalInteger("i") == 2)
        #expect(try metadata.optionalFloat("f") == 1)
        #expect(try metadata.optionalBool("b") == true)
        #expect(try metadata.optionalStrings("ss") == ["y"])
        #expect(try metadata.optionalIntegers("ii") == [1])
        #expect(try metadata.optionalFloats("ff") == [3])

        #expect(try metadata.optionalString("absent") == nil)
        #expect(try metadata.optionalInteger("absent") == nil)
        #expect(try metadata.optionalFloat("absent") == nil)
        #expect(try metadata.optionalBool("absent") == nil)
        #expect(try metadata.optionalStrings("absent") == nil)
        #expect(try metadata.optionalIntegers("absent") == nil)
        #expect(try metadata.optionalFloats("absent") == nil)

        #expect(throws: FormatError.self) { try metadata.optionalString("i") }
        #expect(throws: FormatError.self) { try metadata.optionalInteger("s") }
        #expect(throws: FormatError.self) { try metadata.optionalFloat("b") }
        #expect(throws: FormatError.self) { try metadata.optionalBool("f") }
        #expect(throws: FormatError.self) { try metadata.optionalStrings("ii") }
        #expect(throws: FormatError.self) { try metadata.optionalIntegers("ss") }
        #expect(throws: FormatError.self) { try metadata.optionalFloats("ss") }
    }
}
