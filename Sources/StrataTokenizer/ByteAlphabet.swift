/// GPT-2's reversible map between the 256 byte values and 256 printable Unicode scalars.
///
/// Byte-level BPE vocabularies store token texts in this alphabet so that every byte string,
/// including invalid UTF-8 and control bytes, has a printable spelling: bytes that are already
/// printable Latin-1 (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves, and the remaining 68
/// bytes are given the scalars U+0100 upward in byte order (so a space is `Ġ`, U+0120).
enum ByteAlphabet {
    /// The scalar that spells each byte, indexed by byte value.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var nextShifted: UInt32 = 256
        for byte in 0..<256 {
            if standsForItself(UInt8(byte)) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(nextShifted)!
                nextShifted += 1
            }
        }
        return table
    }()

    /// The byte a scalar spells, or nil for scalars outside the alphabet.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = scalar.value
        if value < 256 {
            return standsForItself(UInt8(value)) ? UInt8(value) : nil
        }
        return value < 256 + 68 ? shiftedBytes[Int(value - 256)] : nil
    }

    /// Decodes a token text written in the alphabet into raw bytes; scalars outside the
    /// alphabet (found in hand-added tokens) are kept as their own UTF-8 rather than dropped.
    static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let byte = byte(for: scalar) {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: String(scalar).utf8)
            }
        }
        return bytes
    }

    /// Decodes a token text only if every scalar belongs to the alphabet.
    static func decodeStrictly(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// Spells raw bytes in the alphabet (the form merges and token texts are written in).
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var text = String.UnicodeScalarView()
        for byte in bytes {
            text.append(scalarForByte[Int(byte)])
        }
        return String(text)
    }

    private static func standsForItself(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The bytes spelled by U+0100 … U+0143, in order.
    private static let shiftedBytes: [UInt8] = (0...255).map(UInt8.init).filter { !standsForItself($0) }
}
