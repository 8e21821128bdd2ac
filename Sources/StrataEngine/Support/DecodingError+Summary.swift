/// One-line explanations of JSON decoding failures, for errors that name a file (and line).
/// Package access: it serves Strata's own file readers and should not appear on users' errors.
extension DecodingError {
    /// What is wrong and where, e.g. `missing key 'layer' in steps[3]`; `root` names the
    /// decoded value itself (`the top level`, `the line`).
    package func summary(root: String = "the top level") -> String {
        func location(_ path: [any CodingKey]) -> String {
            guard !path.isEmpty else { return root }
            // steps[0].attention, as one would write it
            return path.enumerated().map { index, key in
                if let position = key.intValue { return "[\(position)]" }
                return index == 0 ? key.stringValue : "." + key.stringValue
            }.joined()
        }
        // JSON's words for what was expected, not Swift's type names
        func expected(_ type: Any.Type) -> String {
            switch type {
            case is Bool.Type: return "true or false"
            case is Int.Type, is Int32.Type, is Int64.Type, is UInt32.Type, is UInt64.Type: return "a whole number"
            case is Double.Type, is Float.Type: return "a number"
            case is String.Type: return "a string"
            default:
                let name = "\(type)"
                if name.hasPrefix("Dictionary") { return "an object" }
                if name.hasPrefix("Array") { return "a list" }
                return name
            }
        }
        switch self {
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' in \(location(context.codingPath))"
        case .typeMismatch(let type, let context):
            return "\(location(context.codingPath)) should be \(expected(type))"
        case .valueNotFound(let type, let context):
            return "\(location(context.codingPath)) is null, expected \(expected(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(location(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }
}
