#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import StrataEngine

/// What `PlanExport` wrote (the `--json` output of `strata export`).
public struct PlanExportSummary: Codable, Sendable, Equatable {
    /// One sublayer written as a zero output projection.
    public struct ZeroedSublayer: Codable, Sendable, Equatable {
        /// The block of the exported file.
        public var block: Int
        /// The plan step it comes from.
        public var step: Int
        /// The source model's layer.
        public var sourceLayer: Int
        /// `attention` or `ffn`.
        public var sublayer: String
        /// The zeroed tensors, by their names in the exported file.
        public var tensors: [String]

        enum CodingKeys: String, CodingKey {
            case block, step, sublayer, tensors
            case sourceLayer = "source_layer"
        }
    }

    /// The file written.
    public var output: String
    /// The source model file.
    public var source: String
    /// The plan's method, if it names one.
    public var method: String?
    public var sourceLayerCount: Int
    /// The source layer of each exported block, in block order (its count is the block count).
    public var layers: [Int]
    /// Plan steps that run neither sublayer, left out of the file.
    public var droppedSteps: [Int]
    public var tensors: Int
    /// The size of the file.
    public var bytes: Int
    public var zeroedSublayers: [ZeroedSublayer]
    /// Whether each block attends through the sliding window, when the family has windows.
    public var slidingWindowLayers: [Bool]?
    /// What a user of the file should know (zeroed sublayers cost compute in other engines;
    /// window kinds that engines ignoring the pattern key would get wrong).
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case output, source, method, layers, tensors, bytes, warnings
        case sourceLayerCount = "source_layer_count"
        case droppedSteps = "dropped_steps"
        case zeroedSublayers = "zeroed_sublayers"
        case slidingWindowLayers = "sliding_window_layers"
    }
}

/// Why a plan cannot be exported. Each message names the file, and the tensor, key or plan
/// field concerned, with what was expected and what was found.
public enum PlanExportError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The plan does not fit the model (made for another model, out-of-range layers, empty).
    case plan(PlanError)
    /// The output is the source model file.
    case outputIsSource(path: String)
    case outputExists(path: String)
    case outputIsFolder(path: String)
    case outputFolderMissing(path: String, folder: String)
    case outputNotWritable(path: String, reason: String)
    /// A sublayer the plan skips has no output projection to zero.
    case missingProjection(path: String, tensor: String, step: Int, sublayer: String)
    /// A `blk.` tensor outside the model's layers (or without a layer number).
    case strayLayerTensor(path: String, tensor: String, layerCount: Int)
    case metadata(path: String, key: String, reason: String)
    case write(path: String, reason: String)
    /// A step's linear map that no weight of the file can absorb.
    case mapNotFoldable(step: Int, name: String, reason: String)

    public var description: String {
        switch self {
        case .plan(let error):
            "the plan does not fit the model: \(error)"
        case .outputIsSource(let path):
            "\(path) is the source model; refusing to overwrite it (even with --force): choose another output"
        case .outputExists(let path):
            "\(path) exists; choose another output or allow overwriting (--force)"
        case .outputIsFolder(let path):
            "\(path) is a folder; give a file name for the output"
        case .outputFolderMissing(let path, let folder):
            "cannot write \(path): the folder \(folder) does not exist"
        case .outputNotWritable(let path, let reason):
            "cannot write \(path): \(reason)"
        case .missingProjection(let path, let tensor, let step, let sublayer):
            "\(path): step \(step) skips its \(sublayer) sublayer, whose output projection '\(tensor)' the file lacks"
        case .strayLayerTensor(let path, let tensor, let layerCount):
            "\(path): tensor '\(tensor)' is not in one of the model's layers 0..<\(layerCount)"
        case .metadata(let path, let key, let reason):
            "\(path): metadata '\(key)': \(reason)"
        case .write(let path, let reason):
            "cannot write \(path): \(reason)"
        case .mapNotFoldable(let step, let name, let reason):
            "step \(step) applies the linear map '\(name)', which cannot be folded into the file's weights: \(reason)"
        }
    }
}

extension PlanExport {
    /// Checks, before any work, that `path` can receive the export of `source`: it is not the
    /// source itself (not even through another name or a link, and not even when `overwrite`),
    /// not a folder, absent unless `overwrite`, and its folder exists and takes new files.
    public static func checkOutput(path: String, source: String, overwrite: Bool) throws(PlanExportError) {
        let files = FileManager.default
        var isFolder: ObjCBool = false
        if isSource(output: path, source: source) { throw .outputIsSource(path: path) }
        if files.fileExists(atPath: path, isDirectory: &isFolder) {
            if isFolder.boolValue { throw .outputIsFolder(path: path) }
            if !overwrite { throw .outputExists(path: path) }
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard files.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw .outputFolderMissing(path: path, folder: folder)
        }
        // the writer creates `<path>.partial` and renames it: try creating that, as root too
        // (where permission bits alone do not tell)
        let probe = path + ".partial"
        let existed = files.fileExists(atPath: probe)
        let descriptor = open(probe, O_WRONLY | O_CREAT, 0o644)
        guard descriptor >= 0 else {
            throw .outputNotWritable(path: path, reason: "cannot create files in \(folder): \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        if !existed { unlink(probe) }
    }

    /// Whether writing `output` would replace the model `source`: the same path, or the same
    /// file through another name, a link or a hard link.
    public static func isSource(output: String, source: String) -> Bool {
        FileManager.default.fileExists(atPath: output) ? sameFile(output, source) : resolved(output) == resolved(source)
    }

    private static func resolved(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Whether two existing paths name one file (hard links and links included).
    private static func sameFile(_ first: String, _ second: String) -> Bool {
        if resolved(first) == resolved(second) { return true }
        let files = FileManager.default
        func identity(_ path: String) -> [UInt64]? {
            guard let attributes = try? files.attributesOfItem(atPath: path),
                  let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value,
                  let device = (attributes[.systemNumber] as? NSNumber)?.uint64Value
            else { return nil }
            return [device, inode]
        }
        guard let one = identity(first) else { return false }
        return one == identity(second)
    }
}
