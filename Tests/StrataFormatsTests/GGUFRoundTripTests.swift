import Foundation
import StrataFormats
import StrataKernels
import Testing

/// Writer → reader round trips: every value type, nested arrays, every tensor format's geometry.
@Suite struct GGUFRoundTripTests {
    static let scalars: [(String, GGUFValue)] = [
        ("test.uint8", .uint8(200)), ("test.int8", .int8(-100)),
        ("test.uint16", .uint16(60_000)), ("test.int16", .int16(-30_000)),
        ("test.uint32", .uint32(4_000_000_000)), ("test.int32", .int32(-2_000_000_000)),
        ("test.uint64", .uint64(.max)), ("test.int64", .int64(.min)),
        ("test.float32", .float32(-1.5e-7)), ("test.float64", .float64(2.718281828459045)),
        ("test.bool.true", .bool(true)), ("test.bool.false", .bool(false)),
        ("test.string", .string("héllo, 世界 🙂")), ("test.string.empty", .string("")),
    ]

    static let arrays: [(String, GGUFValue)] = [
        ("test.array.uint8", .array([.uint8(0), .uint8(255)])),
        ("test.array.int32", .array([.int32(-1), .int32(7)])),
        ("test.array.float32", .array([.float32(0.5), .float32(-2)])),
        ("test.array.float64", .array([.float64(1e300)])),
        ("test.array.bool", .array([.bool(true), .bool(false)])),
        ("test.array.string", .array([.string("Ġ Ġ"), .string(""), .string("<|im_end|>")])),
        ("test.array.empty", .array([])),
        ("test.array.nested", .array([
            .array([.int64(1), .int64(2)]),
            .array([]),
            .array([.array([.string("deep")])]),
        ])),
    ]

    @Test func everyValueTypeRoundTrips() throws {
        var writer = GGUFWriter()
        for (key, value) in Self.scalars + Self.arrays { writer.set(key, value) }
        let file = try GGUFFile(bytes: ByteView(ByteStorage.copying(try writer.bytes())), path: "values.gguf")

        #expect(file.version == 3)
        #expect(file.metadata.keys == (Self.scalars + Self.arrays).map(\.0))
        for (key, value) in Self.scalars + Self.arrays {
            #expect(file.metadata[key] == value, "\(key)")
        }
        #expect(file.tensors.isEmpty)
    }

    @Test func settingAKeyAgainReplacesItInPlace() throws {
        var writer = GGUFWriter()
        writer.set("a", .uint8(1))
        writer.set("b", .uint8(2))
        writer.set("a", .string("again"))
        let file = try GGUFFile(bytes: ByteView(ByteStorage.copying(try writer.bytes())), path: "replace.gguf")
        #expect(file.metadata.keys == ["a", "b"])
        #expect(file.metadata["a"] == .string("again"))
    }

    @Test(arguments: QuantFormat.allCases)
    func tensorGeometryRoundTrips(_ format: QuantFormat) throws {
        // An odd byte count per tensor exercises the padding between tensors.
        let shapes = [[format.blockSize * 3, 5], [format.blockSize], [format.blockSize, 2, 3, 1]]
        var writer = GGUFWriter()
        var payloads: [[UInt8]] = []
        for (index, shape) in shapes.enumerated() {
            let count = try #require(format.byteCount(elements: shape.reduce(1, *)))
            let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            payloads.append(payload)
            try writer.addTensor(name: "tensor.\(index)", shape: shape, format: format, data: payload)
        }
        let file = try GGUFFile(bytes: ByteView(ByteStorage.copying(try writer.bytes())), path: "\(format).gguf")

        #expect(file.tensors.map(\.name) == ["tensor.0", "tensor.1", "tensor.2"])
        #expect(file.dataOffset % 32 == 0)
        for (index, shape) in shapes.enumerated() {
            let tensor = try #require(file.tensor(named: "tensor.\(index)"))
            #expect(tensor.shape == shape)
            #expect(tensor.format == format)
            #expect(tensor.elementCount == shape.reduce(1, *))
            #expect(tensor.byteCount == payloads[index].count)
            #expect(tensor.offset % 32 == 0)
            let data = file.data(for: tensor)
            #expect(data.bytes(at: 0, count: data.count) == payloads[index])
        }
    }

    @Test func customAlignmentIsRecordedAndHonoured() throws {
        var writer = GGUFWriter(alignment: 64)
        try writer.addTensor(name: "a", shape: [3], format: .f32, data: [UInt8](repeating: 1, count: 12))
        try writer.addTensor(name: "b", shape: [32], format: .q8_0, data: [UInt8](repeating: 2, count: 34))
        let file = try GGUFFile(bytes: ByteView(ByteStorage.copying(try writer.bytes())), path: "aligned.gguf")
        #expect(file.alignment == 64)
        #expect(try file.metadata.integer("general.alignment") == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file.tensors.map(\.offset) == [0, 64])
    }

    @Test func tensorsFromAMappedViewAreCopiedOut() throws {
        let source = ByteView(ByteStorage.copying((0..<200).map { UInt8($0) }))
        var writer = GGUFWriter()
        try writer.addTensor(name: "slice", shape: [2, 4], format: .i32, data: source.slice(start: 100, length: 32))
        let file = try GGUFFile(bytes: ByteView(ByteStorage.copying(try writer.bytes())), path: "view.gguf")
        let data = file.data(for: try #require(file.tensor(named: "slice")))
        #expect(data.bytes(at: 0, count: data.count) == Array(100..<132))
    }

    @Test func writesToDiskAndRefusesToOverwrite() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        let big = [UInt8](repeating: 7, count: 4 * 1000)
        try writer.addTensor(name: "w", shape: [1000], format: .f32, data: big)
        try writer.write(to: path)

        let file = try GGUFFile.open(path: path)
        #expect(try file.metadata.string("general.architecture") == "llama")
        #expect(file.fileSize == (try writer.bytes()).count)

        let refusal = #expect(throws: FormatError.self) { try writer.write(to: path) }
        #expect(refusal?.description.contains("overwrite") == true)
        writer.set("general.architecture", .string("qwen2"))
        try writer.write(to: path, overwrite: true)
        #expect(try GGUFFile.open(path: path).metadata.string("general.architecture") == "qwen2")
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
    }

    @Test func writerRejectsInconsistentInput() throws {
        var writer = GGUFWriter()
        try writer.addTensor(name: "w", shape: [32], format: .q4_0, data: [UInt8](repeating: 0, count: 18))

        let duplicate = #expect(throws: FormatError.self) {
            try writer.addTensor(name: "w", shape: [32], format: .q4_0, data: [UInt8](repeating: 0, count: 18))
        }
        #expect(duplicate?.message.contains("duplicate tensor name 'w'") == true)

        let wrongSize = #expect(throws: FormatError.self) {
            try writer.addTensor(name: "x", shape: [32, 2], format: .q4_0, data: [UInt8](repeating: 0, count: 35))
        }
        #expect(wrongSize?.message.contains("needs 36 bytes, got 35") == true)

        let partialBlock = #expect(throws: FormatError.self) {
            try writer.addTensor(name: "y", shape: [33], format: .q4_0, data: [])
        }
        #expect(partialBlock?.message.contains("not a multiple of Q4_0's block size 32") == true)

        writer.set("mixed", .array([.int32(1), .string("two")]))
        let mixed = #expect(throws: FormatError.self) { try writer.bytes() }
        #expect(mixed?.message.contains("'mixed'") == true)

        let badAlignment = #expect(throws: FormatError.self) { try GGUFWriter(alignment: 48).bytes() }
        #expect(badAlignment?.message.contains("power of two") == true)
    }
}
