/// Finds stop strings in streamed text: text is released only once it can no longer be the
/// beginning of a stop string, and generation stops before the first stop string found.
struct StopMatcher: Sendable {
    private let stops: [String]
    /// Text received but not yet released: it ends with what may begin a stop string.
    private var held = ""

    init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Takes new text; returns what may be released and whether a stop string was found (the
    /// released text then ends just before it, and nothing more should be fed).
    mutating func feed(_ text: String) -> (release: String, stopped: Bool) {
        guard !stops.isEmpty else { return (text, false) }
        held += text
        var earliest: String.Index?
        for stop in stops {
            if let range = held.range(ofText: stop), earliest.map({ range.lowerBound < $0 }) ?? true {
                earliest = range.lowerBound
            }
        }
        if let earliest {
            let release = String(held[..<earliest])
            held = ""
            return (release, true)
        }
        // hold back the longest suffix that is a proper prefix of some stop string
        var keep = 0
        for stop in stops {
            var length = min(stop.count - 1, held.count)
            while length > keep {
                if held.hasSuffix(stop.prefix(length)) { keep = length; break }
                length -= 1
            }
        }
        let cut = held.index(held.endIndex, offsetBy: -keep)
        let release = String(held[..<cut])
        held = String(held[cut...])
        return (release, false)
    }

    /// The text still held when generation ends without a stop string.
    mutating func flush() -> String {
        defer { held = "" }
        return held
    }
}

extension String {
    /// The first range where `text` occurs, compared by characters.
    fileprivate func range(ofText text: String) -> Range<String.Index>? {
        guard !text.isEmpty, count >= text.count else { return nil }
        var start = startIndex
        while start < endIndex {
            if self[start...].hasPrefix(text) {
                return start..<index(start, offsetBy: text.count)
            }
            start = index(after: start)
        }
        return nil
    }
}
