/// Cuts text into words before BPE, as the regexes named by `tokenizer.ggml.pre` do.
///
/// llama.cpp maps each name to one or more regexes applied in turn: every regex cuts each
/// piece left by the previous one, its matches and the gaps between them becoming pieces.
/// The regexes are hand-coded here over Unicode scalars, in the same order, so the splits are
/// the same without a regex engine. Lookaheads stop at the edge of a fragment (the text
/// between two special tokens), as they do in llama.cpp.
struct PreTokenizer: Sendable {
    /// One regex of the chain.
    enum Stage: Sendable {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        /// with k = `maximumDigits` (3 for Llama 3, 1 for Qwen2).
        case llama3(maximumDigits: Int)
        /// `\p{N}`: every number scalar on its own.
        case eachNumber
        /// `\p{N}+`
        case numberRuns
        /// `[\p{P}\$\+<=>\^~\|]+`
        case punctuationRuns
        /// `[0-9][0-9][0-9]`
        case asciiDigitTriples
    }

    /// The regexes, applied in order.
    let stages: [Stage]
    /// A word that is itself a vocabulary entry becomes that token without merging
    /// (llama.cpp's `ignore_merges`, set for the Llama 3 family).
    let wholeWordsSkipMerges: Bool

    /// The pre-tokenizer llama.cpp selects for a `tokenizer.ggml.pre` value.
    init(name: String) throws(TokenizerError) {
        guard let family = Self.families.first(where: { $0.names.contains(name) }) else {
            throw .unsupportedPreTokenizer(name)
        }
        stages = family.stages
        wholeWordsSkipMerges = family.wholeWordsSkipMerges
    }

    /// Every accepted `tokenizer.ggml.pre` value.
    static var supportedNames: [String] { families.flatMap(\.names) }

    private struct Family {
        let names: [String]
        let stages: [Stage]
        var wholeWordsSkipMerges = false
    }

    // Names and their regex chains as in llama.cpp's llama-vocab.cpp (2025-26).
    private static let families: [Family] = [
        Family(names: ["gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4", "mellum", "gigachat", "a.x-4.0"],
               stages: [.gpt2]),
        Family(names: ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"],
               stages: [.eachNumber, .gpt2]),
        Family(names: ["qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan", "grok-2"],
               stages: [.llama3(maximumDigits: 1)]),
        Family(names: ["llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"],
               stages: [.llama3(maximumDigits: 3)], wholeWordsSkipMerges: true),
        Family(names: ["dbrx", "smaug-bpe"], stages: [.llama3(maximumDigits: 3)]),
        Family(names: ["default"],
               stages: [.punctuationRuns, .gpt2, .numberRuns, .asciiDigitTriples]),
    ]

    /// Cuts `text` into words, appending the scalar index where each word ends to `ends`.
    /// `scratch` is reused between calls to avoid allocating per fragment.
    func split(_ text: ClassifiedText, into ends: inout [Int], scratch: inout [Int]) {
        ends.removeAll(keepingCapacity: true)
        guard text.count > 0 else { return }
        ends.append(text.count)
        for stage in stages {
            swap(&ends, &scratch)
            ends.removeAll(keepingCapacity: true)
            var start = 0
            for end in scratch {
                // The output array is swapped in and out so appending never copies it.
                var cutter = Cutter(text: text, start: start, end: end)
                swap(&cutter.ends, &ends)
                cutter.cut(stage)
                swap(&cutter.ends, &ends)
                start = end
            }
        }
    }
}

/// A fragment's scalars with their classes, indexed together.
struct ClassifiedText {
    var scalars: [Unicode.Scalar] = []
    var classes: [ScalarClass] = []
    /// UTF-8 offset of each scalar within the fragment, plus one entry for the end.
    var byteOffsets: [Int] = []

    var count: Int { scalars.count }

    /// Refills the buffers from `bytes[range]`, which must hold whole UTF-8 sequences.
    mutating func load(_ bytes: [UInt8], _ range: Range<Int>) {
        scalars.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        byteOffsets.removeAll(keepingCapacity: true)
        var decoder = UTF8()
        var iterator = bytes[range].makeIterator()
        var offset = range.lowerBound
        while case .scalarValue(let scalar) = decoder.decode(&iterator) {
            scalars.append(scalar)
            classes.append(ScalarClass.of(scalar))
            byteOffsets.append(offset)
            offset += UTF8.width(scalar)
        }
        byteOffsets.append(offset)
    }
}

/// Applies one regex stage to the piece `start..<end`, appending word ends.
private struct Cutter {
    let text: ClassifiedText
    let start: Int
    let end: Int
    var ends: [Int] = []
    /// Where the last word ended; nothing before it can start a new word.
    private var lastEnd: Int

    init(text: ClassifiedText, start: Int, end: Int) {
        self.text = text
        self.start = start
        self.end = end
        self.lastEnd = start
    }

    /// The class at `index`, empty past the piece's end (where a lookahead sees nothing).
    @inline(__always)
    private func classAt(_ index: Int) -> ScalarClass {
        index < end ? text.classes[index] : []
    }

    @inline(__always)
    private func scalarAt(_ index: Int) -> Unicode.Scalar? {
        index < end ? text.scalars[index] : nil
    }

    /// Records a word ending at `index` (empty words are dropped).
    @inline(__always)
    private mutating func emit(_ index: Int) {
        if index > lastEnd {
            ends.append(index)
            lastEnd = index
        }
    }

    mutating func cut(_ stage: PreTokenizer.Stage) {
        switch stage {
        case .gpt2:
            cutWords(contractionsIgnoreCase: false) { $0.gpt2WordEnd(at: $1) }
        case .llama3(let maximumDigits):
            cutWords(contractionsIgnoreCase: true) { $0.llama3WordEnd(at: $1, maximumDigits: maximumDigits) }
        case .eachNumber: isolateRuns(maximumLength: 1) { $0.contains(.number) }
        case .numberRuns: isolateRuns(maximumLength: .max) { $0.contains(.number) }
        case .punctuationRuns:
            isolateRuns(maximumLength: .max) { [text] index, scalarClass in
                // `\p{P}` plus the ASCII symbols the regex lists beside it.
                switch text.scalars[index] {
                case "$", "+", "<", "=", ">", "^", "~", "|": return true
                default: return scalarClass.contains(.punctuation)
                }
            }
        case .asciiDigitTriples:
            isolateRuns(maximumLength: 3, minimumLength: 3) { [text] index, _ in
                ("0"..."9").contains(text.scalars[index])
            }
        }
    }

    /// Splits off runs of matching scalars of `minimumLength...maximumLength`, leftmost first,
    /// leaving the gaps between them as words too (a regex split with isolated matches).
    private mutating func isolateRuns(
        maximumLength: Int, minimumLength: Int = 1, _ matches: (Int, ScalarClass) -> Bool
    ) {
        var position = start
        var gapStart = start
        while position < end {
            var runEnd = position
            while runEnd < end && runEnd - position < maximumLength && matches(runEnd, text.classes[runEnd]) {
                runEnd += 1
            }
            if runEnd - position >= minimumLength {
                if position > gapStart { emit(position) }
                emit(runEnd)
                position = runEnd
                gapStart = runEnd
            } else {
                position += 1
            }
        }
        if end > gapStart { emit(end) }
    }

    private mutating func isolateRuns(maximumLength: Int, _ matches: (ScalarClass) -> Bool) {
        isolateRuns(maximumLength: maximumLength) { _, scalarClass in matches(scalarClass) }
    }

    /// Length of an English contraction (`'s`, `'re`, …) starting at `position`, or 0.
    private func contractionLength(at position: Int, ignoringCase: Bool) -> Int {
        guard text.scalars[position] == "'", let first = scalarAt(position + 1) else { return 0 }
        func folded(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
            // Only ASCII capitals fold onto the ASCII letters compared below.
            ignoringCase && ("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32)! : scalar
        }
        let next = folded(first)
        if next == "s" || next == "t" || next == "m" || next == "d" {
            return 2
        }
        guard let secondScalar = scalarAt(position + 2) else { return 0 }
        let second = folded(secondScalar)
        if (next == "r" && second == "e") || (next == "v" && second == "e") || (next == "l" && second == "l") {
            return 3
        }
        return 0
    }

    private static let letterOrNumberOrSpace: ScalarClass = [.letter, .number, .whitespace]

    /// Length of the whitespace run starting at `position`.
    private func whitespaceRun(at position: Int) -> Int {
        var length = 0
        while classAt(position + length).contains(.whitespace) { length += 1 }
        return length
    }

    /// The regexes of both families start with English contractions and then try their
    /// alternatives in order at each position; `wordEnd` is the family's alternatives.
    private mutating func cutWords(contractionsIgnoreCase: Bool, wordEnd: (Cutter, Int) -> Int) {
        var position = start
        while position < end {
            let contraction = contractionLength(at: position, ignoringCase: contractionsIgnoreCase)
            position = contraction > 0 ? position + contraction : wordEnd(self, position)
            emit(position)
        }
    }

    /// GPT-2's alternatives after the contractions, for a word starting at `position`.
    private func gpt2WordEnd(at start: Int) -> Int {
        // ` ?\p{L}+`, ` ?\p{N}+` and ` ?[^\s\p{L}\p{N}]+` all take one optional leading space.
        let leadingSpace = text.scalars[start] == " " ? 1 : 0
        let first = classAt(start + leadingSpace)
        for runClass in [ScalarClass.letter, .number, .other] where first.contains(runClass) {
            var position = start + leadingSpace
            while classAt(position).contains(runClass) { position += 1 }
            return position
        }
        return endOfWhitespace(at: start, newlinesEndRun: false)
    }

    /// `\s+(?!\S)|\s+` (and with `newlinesEndRun`, `\s*[\r\n]+` first): where the whitespace
    /// word starting at `position` ends. A run followed by text gives up its last scalar,
    /// which then leads the next word.
    private func endOfWhitespace(at position: Int, newlinesEndRun: Bool) -> Int {
        let length = whitespaceRun(at: position)
        if newlinesEndRun {
            var lastNewlineEnd = 0
            for index in position..<(position + length) {
                let scalar = text.scalars[index]
                if scalar == "\r" || scalar == "\n" { lastNewlineEnd = index + 1 }
            }
            if lastNewlineEnd > 0 { return lastNewlineEnd }
        }
        if length > 1 && position + length < end {
            return position + length - 1
        }
        return position + max(length, 1)
    }

    /// The Llama 3 / Qwen2 alternatives after the contractions, for a word starting at `start`.
    private func llama3WordEnd(at start: Int, maximumDigits: Int) -> Int {
        let scalar = text.scalars[start]
        let current = text.classes[start]
        let isNewline = scalar == "\r" || scalar == "\n"
        var position = start
        // `[^\r\n\p{L}\p{N}]?\p{L}+`: letters, optionally led by one other scalar.
        if !isNewline && !current.contains(.number)
            && (current.contains(.letter) || classAt(start + 1).contains(.letter)) {
            position += 1
            while classAt(position).contains(.letter) { position += 1 }
            return position
        }
        // `\p{N}{1,k}`
        if current.contains(.number) {
            while classAt(position).contains(.number) && position - start < maximumDigits { position += 1 }
            return position
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let leadingSpace = scalar == " " ? 1 : 0
        if classAt(start + leadingSpace).isDisjoint(with: Self.letterOrNumberOrSpace) {
            position += leadingSpace
            while classAt(position).contains(.other) { position += 1 }
            while let next = scalarAt(position), next == "\r" || next == "\n" { position += 1 }
            return position
        }
        return endOfWhitespace(at: start, newlinesEndRun: true)
    }
}
