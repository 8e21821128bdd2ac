import Foundation
import Testing
@testable import StrataKernels
import StrataTestSupport

/// The rows, importance vectors and reference bytes of `Fixtures/Quantizers` (see the README).
struct QuantizerFixture {
    static let width = 512
    let rows: [[Float]]
    let importance: [[Float]]

    static let shared: QuantizerFixture? = try? QuantizerFixture()

    private init() throws {
        func floats(_ name: String) throws -> [[Float]] {
            let bytes = try Self.load(name)
            let values = stride(from: 0, to: bytes.count, by: 4).map { start in
                Float(bitPattern: bytes[start..<start + 4].enumerated()
                    .reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) })
            }
            return stride(from: 0, to: values.count, by: Self.width).map { Array(values[$0..<$0 + Self.width]) }
        }
        rows = try floats("rows.f32")
        importance = try floats("importance.f32")
    }

    static func load(_ name: String) throws -> [UInt8] {
        let parts = name.split(separator: "/")
        let file = String(parts.last!), folder = (["Fixtures/Quantizers"] + parts.dropLast().map(String.init))
        let base = (file as NSString).deletingPathExtension, suffix = (file as NSString).pathExtension
        guard let url = Bundle.module.url(forResource: base, withExtension: suffix,
                                          subdirectory: folder.joined(separator: "/")) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: name])
        }
        return [UInt8](try Data(contentsOf: url))
    }

    /// The reference bytes in `name`, one row's worth per fixture row.
    func referenceRows(_ name: String, format: QuantFormat) throws -> [[UInt8]] {
        let bytes = try Self.load(name)
        let rowBytes = format.byteCount(elements: Self.width)!
        #expect(bytes.count == rowBytes * rows.count, "\(name): \(bytes.count) bytes for \(rows.count) rows")
        return stride(from: 0, to: bytes.count, by: rowBytes).map { Array(bytes[$0..<$0 + rowBytes]) }
    }
}

/// The first block (of `format`) where `candidate` and `reference` bytes differ, for messages.
func firstDifferentBlock(_ candidate: [UInt8], _ reference: [UInt8], format: QuantFormat) -> Int? {
    guard let index = zip(candidate, reference).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else {
        return candidate.count == reference.count ? nil : min(candidate.count, reference.count) / format.bytesPerBlock
    }
    return index / format.bytesPerBlock
}

let legacyQuantizerFormats: [QuantFormat] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0]
let kQuantizerFormats: [QuantFormat] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

@Suite struct QuantizerFixtureTests {
    /// Expects every fixture row quantized to `format` (with the row's importance vector when
    /// `weighted`) to equal the reference bytes in `file`.
    private func expectMatches(_ format: QuantFormat, file: String, weighted: Bool) throws {
        let fixture = try #require(QuantizerFixture.shared)
        let expected = try fixture.referenceRows(file, format: format)
        for (index, row) in fixture.rows.enumerated() {
            let bytes = try Quantizer.quantize(row, to: format, importance: weighted ? fixture.importance[index] : nil)
            let block = firstDifferentBlock(bytes, expected[index], format: format)
            #expect(block == nil, "\(format) row \(index): first different block \(block ?? -1)")
        }
    }

    @Test("Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 are bitwise what the gguf package writes", arguments: legacyQuantizerFormats)
    func matchesGGUFPackage(format: QuantFormat) throws {
        try expectMatches(format, file: "gguf/\(format).bin", weighted: false)
    }

    @Test("K-quants are bitwise llama.cpp's quantize_row_*_ref", arguments: kQuantizerFormats)
    func matchesLlamaReference(format: QuantFormat) throws {
        try expectMatches(format, file: "ggml/\(format).bin", weighted: false)
    }

    @Test("with importance, every format is bitwise llama.cpp's quantize_* given quant_weights",
          arguments: legacyQuantizerFormats.filter { $0 != .q8_0 } + kQuantizerFormats)
    func matchesLlamaWeighted(format: QuantFormat) throws {
        try expectMatches(format, file: "ggml/\(format)-importance.bin", weighted: true)
    }

    @Test("Q8_0 ignores importance, as llama.cpp does")
    func q8IgnoresImportance() throws {
        let fixture = try #require(QuantizerFixture.shared)
        for (index, row) in fixture.rows.enumerated() {
            let weighted = try Quantizer.quantize(row, to: .q8_0, importance: fixture.importance[index])
            #expect(try weighted == Quantizer.quantize(row, to: .q8_0))
        }
    }
}

@Suite struct QuantizerErrorTests {
    @Test("a row that is not a whole number of blocks is refused, naming format and sizes")
    func rowWidth() {
        #expect(throws: QuantizationError.rowWidth(format: .q4_K, width: 300, blockSize: 256)) {
            try Quantizer.quantize([Float](repeating: 1, count: 300), to: .q4_K)
        }
        #expect(throws: QuantizationError.rowWidth(format: .q8_0, width: 33, blockSize: 32)) {
            try Quantizer.quantize([Float](repeating: 1, count: 33), to: .q8_0)
        }
        let message = QuantizationError.rowWidth(format: .q4_K, width: 300, blockSize: 256).description
        #expect(message.contains("Q4_K") && message.contains("256") && message.contains("300"), "\(message)")
    }

    @Test("formats without a quantizer are refused by name", arguments: [QuantFormat.f16, .iq2_xs, .q8_K, .bf16])
    func unsupported(format: QuantFormat) {
        #expect(!Quantizer.supports(format))
        #expect(throws: QuantizationError.unsupportedFormat(format)) {
            try Quantizer.quantize([Float](repeating: 1, count: 256), to: format)
        }
        #expect(QuantizationError.unsupportedFormat(format).description.contains(format.description))
    }

    @Test("importance of the wrong length, non-finite values and a wrong matrix size are refused")
    func otherInputs() {
        #expect(throws: QuantizationError.importanceCount(format: .q4_0, expected: 64, found: 32)) {
            try Quantizer.quantize([Float](repeating: 1, count: 64), to: .q4_0, importance: [Float](repeating: 1, count: 32))
        }
        var row = [Float](repeating: 1, count: 64)
        row[40] = .nan
        #expect(throws: QuantizationError.self) { try Quantizer.quantize(row, to: .q5_1) }
        row[40] = -.infinity
        #expect(throws: QuantizationError.nonFiniteValue(index: 40, value: -.infinity)) {
            try Quantizer.quantize(row, to: .q5_1)
        }
        #expect(throws: QuantizationError.matrixSize(rows: 3, columns: 32, found: 64)) {
            try Quantizer.quantize(matrix: [Float](repeating: 0, count: 64), rows: 3, columns: 32, to: .q8_0)
        }
        #expect(Quantizer.supportedFormats.allSatisfy { $0.isComputable })
    }

    @Test("a matrix quantized on a pool is its rows quantized one by one", arguments: [QuantFormat.q4_1, .q3_K])
    func matrixOnPool(format: QuantFormat) throws {
        var generator = SeededGenerator(seed: 0x3A7)
        let rows = 9, columns = 512
        let values = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
        let importance = (0..<columns).map { _ in Float.random(in: 0.1...3, using: &generator) }
        let whole = try Quantizer.quantize(matrix: values, rows: rows, columns: columns, to: format,
                                           importance: importance, pool: WorkerPool(threadCount: 2))
        var separate: [UInt8] = []
        for row in 0..<rows {
            separate += try Quantizer.quantize(Array(values[(row * columns)..<((row + 1) * columns)]), to: format,
                                               importance: importance)
        }
        #expect(whole == separate)
        #expect(try Quantizer.quantize(matrix: [], rows: 0, columns: 512, to: format).isEmpty)
    }
}
