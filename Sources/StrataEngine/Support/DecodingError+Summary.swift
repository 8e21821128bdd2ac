/// One-line explanations of JSON decoding failures, for errors that name a file (and line).
extension DecodingError {
    /// What is wrong and where, e.g. `missing key 'layer' in steps.[3]`; `root` names the
    /// decoded value itself (`the top level`, `the line`).
    public func summary(root: String = "the top level") -> String {
        func location(_ path: [any CodingKey]) -> String {
            path.isEmpty ? root : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch self {
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' in \(location(context.codingPath))"
        case .typeMismatch(let type, let context):
            return "\(location(context.codingPath)) should be \(type)"
        case .valueNotFound(let type, let context):
            return "\(location(context.codingPath)) is null, expected \(type)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(location(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }
}
