import Foundation
import StrataFormats
import StrataKernels

/// A fitted `hidden × hidden` linear map that a plan step applies to the residual stream: what
/// heals a removed block of layers (ReplaceMe) or carries a layer's stream to the last layer's
/// (a tuned lens, a shortcut draft). Row-vector convention: a row `h` becomes `h · T`.
///
/// The matrix lives in a tensor file written beside the plan (`LayerPlan.mapFile`); plan.json
/// names the tensor. It is held as a `WeightMatrix` of `Tᵀ` (output features by rows), so the
/// forward pass applies it like any other matrix product.
public struct LinearMap: Sendable {
    /// Where in its step the map applies.
    public enum Site: String, Sendable, Codable, Hashable {
        /// To the stream leaving the step: `h ← h · T`.
        case stream
        /// To the step's FFN output before its residual add: `h ← a + f · T`, where `a` is the
        /// stream entering the FFN and `f` what the FFN adds. Folds into the FFN's down
        /// projection (`W_down ← Tᵀ W_down`) when the family has no norm after the FFN.
        case feedForwardOutput = "ffn_output"
    }

    /// The tensor's name in the plan's tensor file.
    public var name: String
    public var site: Site
    /// `Tᵀ` as a float32 matrix (`rows` outputs × `columns` inputs), or nil while the plan was
    /// only decoded and its tensor file not read (such a plan is refused by the forward pass).
    public var matrix: WeightMatrix?

    public init(name: String, site: Site, matrix: WeightMatrix?) {
        self.name = name
        self.site = site
        self.matrix = matrix
    }

    /// A map from `T` given row-major (`T[i][j]` at `i * width + j`, `h · T`).
    public init(name: String, site: Site, map values: [Float], width: Int) {
        precondition(values.count == width * width, "a \(width) x \(width) map has \(width * width) values")
        var transposed = [Float](repeating: 0, count: values.count)
        for i in 0..<width { for j in 0..<width { transposed[j * width + i] = values[i * width + j] } }
        self.init(name: name, site: site, matrix: WeightMatrix.float32(transposed, rows: width, columns: width))
    }

    /// The identity map of `width` features: a step with it computes what the step without it does.
    public static func identity(name: String, site: Site, width: Int) -> LinearMap {
        var values = [Float](repeating: 0, count: width * width)
        for i in 0..<width { values[i * width + i] = 1 }
        return LinearMap(name: name, site: site, map: values, width: width)
    }

    /// Refuses a map whose matrix is missing or not `hiddenSize × hiddenSize`.
    public func checkWidth(_ hiddenSize: Int) throws(PlanError) {
        guard let matrix, matrix.rows == hiddenSize, matrix.columns == hiddenSize else {
            throw .mapSize(name: name, rows: matrix?.rows ?? 0, columns: matrix?.columns ?? 0, hiddenSize: hiddenSize)
        }
    }

    /// `T` row-major (`h · T`), read back from the matrix.
    public var values: [Float] {
        guard let matrix else { return [] }
        let width = matrix.columns
        var result = [Float](repeating: 0, count: matrix.rows * width)
        for j in 0..<matrix.rows {
            let row = matrix.row(j)
            for i in 0..<width { result[i * matrix.rows + j] = row[i] }
        }
        return result
    }
}

extension LinearMap: Equatable, Hashable {
    /// Same name, site and values. A map compared with itself (the plan a decoding loop passes
    /// every step) is decided by the identity of its storage, without reading the values.
    public static func == (lhs: LinearMap, rhs: LinearMap) -> Bool {
        guard lhs.name == rhs.name, lhs.site == rhs.site else { return false }
        switch (lhs.matrix, rhs.matrix) {
        case (nil, nil): return true
        case (let left?, let right?):
            if left.bytes.storage === right.bytes.storage && left.bytes.offset == right.bytes.offset
                && left.bytes.count == right.bytes.count && left.rows == right.rows { return true }
            return left.rows == right.rows && left.columns == right.columns
                && left.bytes.bytes(at: 0, count: left.bytes.count) == right.bytes.bytes(at: 0, count: right.bytes.count)
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(site)
        hasher.combine(matrix?.rows)
    }
}

extension LinearMap: Codable {
    enum CodingKeys: String, CodingKey {
        case name = "tensor"
        case site
    }

    /// plan.json holds the tensor's name and site; `LayerPlan.load` reads the matrix.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        site = try container.decodeIfPresent(Site.self, forKey: .site) ?? .stream
        matrix = nil
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(site, forKey: .site)
    }
}

extension LayerPlan {
    /// The plan's linear maps, in step order.
    public var linearMaps: [LinearMap] { steps.compactMap(\.map) }

    /// Reads the matrices of this plan's maps from the tensor file at `path`: each must be a
    /// float32 tensor of the plan's name, square.
    public func resolvingMaps(tensorFile path: String) throws(PlanError) -> LayerPlan {
        guard steps.contains(where: { $0.map != nil }) else { return self }
        let file: GGUFFile
        do {
            file = try GGUFFile.open(path: path)
        } catch {
            throw .unreadable(path: path, reason: "cannot read the plan's tensor file: \(error)")
        }
        var plan = self
        for index in plan.steps.indices {
            guard var map = plan.steps[index].map else { continue }
            guard let info = file.tensor(named: map.name) else {
                throw .unreadable(path: path, reason: "no tensor '\(map.name)' (step \(index) applies it)")
            }
            guard info.format == .f32, info.shape.count == 2, info.shape[0] == info.shape[1],
                  let matrix = WeightMatrix(format: .f32, rows: info.shape[1], columns: info.shape[0], bytes: file.data(for: info))
            else {
                throw .unreadable(path: path, reason: "tensor '\(map.name)' must be a square f32 matrix, found \(info.format) \(info.shape)")
            }
            map.matrix = matrix
            plan.steps[index].map = map
        }
        return plan
    }

    /// Writes this plan's maps to a GGUF tensor file at `path` (each as `Tᵀ`, f32).
    public func writeMaps(to path: String, overwrite: Bool) throws {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("strata-linear-maps"))
        writer.set("strata.maps.count", .uint32(UInt32(linearMaps.count)))
        for map in linearMaps {
            guard let matrix = map.matrix else { throw PlanError.unreadable(path: path, reason: "map '\(map.name)' has no matrix to write") }
            try writer.addTensor(name: map.name, shape: [matrix.columns, matrix.rows], format: .f32, data: matrix.bytes)
        }
        try writer.write(to: path, overwrite: overwrite)
    }
}
