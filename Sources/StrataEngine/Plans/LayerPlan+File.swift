import Foundation

extension LayerPlan {
    /// Reads a plan.json file. Errors name the file and what is wrong in it.
    /// Reads a plan.json file, and the matrices of its linear maps from the tensor file it
    /// names (`map_file`, relative to the plan's folder). Errors name the file and what is wrong in it.
    public static func load(path: String) throws(PlanError) -> LayerPlan {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        let plan = try decode(data, path: path)
        guard plan.steps.contains(where: { $0.map != nil }) else { return plan }
        guard let mapFile = plan.mapFile else {
            throw .unreadable(path: path, reason: "steps apply linear maps but the plan names no map_file")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        let mapPath = mapFile.hasPrefix("/") ? mapFile : folder.appendingPathComponent(mapFile).path
        return try plan.resolvingMaps(tensorFile: mapPath)
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

    /// Writes the plan as JSON; refuses to replace an existing file unless `overwrite`. A plan
    /// with linear maps also writes their matrices to a tensor file beside it (`<name>.maps.gguf`,
    /// under the same rule), named in the plan as `map_file`.
    public func write(to path: String, overwrite: Bool = false) throws {
        let files = FileManager.default
        if !overwrite && files.fileExists(atPath: path) {
            throw PlanError.unreadable(path: path, reason: "the file exists; choose another name or allow overwriting")
        }
        var plan = self
        if steps.contains(where: { $0.map != nil }) {
            let url = URL(fileURLWithPath: path)
            let mapName = url.deletingPathExtension().lastPathComponent + ".maps.gguf"
            let mapPath = url.deletingLastPathComponent().appendingPathComponent(mapName).path
            if !overwrite && files.fileExists(atPath: mapPath) {
                throw PlanError.unreadable(path: mapPath, reason: "the plan's tensor file exists; choose another name or allow overwriting")
            }
            try writeMaps(to: mapPath, overwrite: overwrite)
            plan.mapFile = mapName
        } else {
            plan.mapFile = nil
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(plan).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
