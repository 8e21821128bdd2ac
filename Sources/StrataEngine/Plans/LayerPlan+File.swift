import Foundation

extension LayerPlan {
    /// Reads a plan.json file. Errors name the file and what is wrong in it.
    public static func load(path: String) throws(PlanError) -> LayerPlan {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        return try decode(data, path: path)
    }

    /// Parses the bytes of a plan.json file; `path` labels the errors.
    public static func decode(_ data: Data, path: String) throws(PlanError) -> LayerPlan {
        do {
            return try JSONDecoder().decode(LayerPlan.self, from: data)
        } catch let error as DecodingError {
            // Foundation reports a number that does not fit its field (layer 1.5) as invalid JSON
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
               (try? JSONSerialization.jsonObject(with: data)) != nil {
                throw .unreadable(path: path, reason: "a number does not fit its field (layers and counts are whole numbers)")
            }
            throw .unreadable(path: path, reason: error.summary())
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
    }

    /// Writes the plan as JSON; refuses to replace an existing file unless `overwrite`.
    public func write(to path: String, overwrite: Bool = false) throws {
        if !overwrite && FileManager.default.fileExists(atPath: path) {
            throw PlanError.unreadable(path: path, reason: "the file exists; choose another name or allow overwriting")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
