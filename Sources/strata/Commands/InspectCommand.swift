import ArgumentParser
import Foundation
import StrataEngine
import StrataFormats

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a model: architecture, hyper-parameters, tokenizer, tensors by format, size.")

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let (model, _) = try modelOptions.load()
        let file = model.file
        var formatCounts: [String: Int] = [:]
        var formatBytes: [String: Int] = [:]
        for tensor in file.tensors {
            formatCounts[tensor.format.description, default: 0] += 1
            formatBytes[tensor.format.description, default: 0] += tensor.byteCount
        }
        let parameters = file.tensors.reduce(0) { $0 + $1.elementCount }
        let vocabulary = model.tokenizer.vocabulary
        let report = InspectOutput(
            path: file.path, fileBytes: file.fileSize, ggufVersion: Int(file.version), config: model.config,
            parameters: parameters, tensorCount: file.tensors.count, tensorsByFormat: formatCounts,
            bytesByFormat: formatBytes,
            tokenizer: .init(model: vocabulary.model, preTokenizer: vocabulary.preTokenizer, tokens: model.tokenizer.count,
                             merges: vocabulary.merges.count, bosID: vocabulary.bosID, eosID: vocabulary.eosID,
                             addBOS: vocabulary.addBOS, hasChatTemplate: model.chatTemplateSource != nil))
        if json {
            try printJSON(report)
            return
        }
        let config = model.config
        print("""
            \(file.path)
              GGUF v\(file.version), \(String(format: "%.1f", Double(file.fileSize) / 1_048_576)) MiB, \
            \(file.tensors.count) tensors, \(String(format: "%.1f", Double(parameters) / 1e6))M parameters
              name            \(config.name)
              architecture    \(config.architecture)
              layers          \(config.layerCount)
              hidden size     \(config.hiddenSize)
              heads           \(config.headCount) query / \(config.kvHeadCount) key-value, \(config.headDimensions) dims each
              feed-forward    \(config.feedForwardSize)
              vocabulary      \(config.vocabularySize)
              context         \(config.contextLength)
              RoPE            base \(config.ropeBase), \(config.rotaryDimensions) dims, \(model.architecture.rotaryStyle == .adjacentPairs ? "adjacent pairs" : "split halves")
              RMSNorm epsilon \(config.rmsNormEpsilon)
              output          \(config.tiedOutput ? "tied to the token embedding" : "separate matrix")
              tokenizer       \(vocabulary.model) / pre \(vocabulary.preTokenizer), \(model.tokenizer.count) tokens, \
            \(vocabulary.merges.count) merges, BOS \(vocabulary.bosID.map(String.init) ?? "-") (added: \(vocabulary.addBOS)), \
            EOS \(vocabulary.eosID.map(String.init) ?? "-"), chat template: \(model.chatTemplateSource != nil ? "yes" : "no")
              tensors by format:
            """)
        for (format, count) in formatCounts.sorted(by: { $0.key < $1.key }) {
            let megabytes = Double(formatBytes[format] ?? 0) / 1_048_576
            print("    \(format.padding(toLength: 6, withPad: " ", startingAt: 0)) \(String(format: "%4d", count)) tensors  \(String(format: "%8.1f", megabytes)) MiB")
        }
    }
}

/// `strata inspect --json` output.
struct InspectOutput: Encodable {
    struct TokenizerSummary: Encodable {
        var model: String
        var preTokenizer: String
        var tokens: Int
        var merges: Int
        var bosID: Int32?
        var eosID: Int32?
        var addBOS: Bool
        var hasChatTemplate: Bool
        enum CodingKeys: String, CodingKey {
            case model, tokens, merges
            case preTokenizer = "pre_tokenizer"
            case bosID = "bos_id"
            case eosID = "eos_id"
            case addBOS = "add_bos"
            case hasChatTemplate = "has_chat_template"
        }
    }
    var path: String
    var fileBytes: Int
    var ggufVersion: Int
    var config: ModelConfig
    var parameters: Int
    var tensorCount: Int
    var tensorsByFormat: [String: Int]
    var bytesByFormat: [String: Int]
    var tokenizer: TokenizerSummary
    enum CodingKeys: String, CodingKey {
        case path, config, parameters, tokenizer
        case fileBytes = "file_bytes"
        case ggufVersion = "gguf_version"
        case tensorCount = "tensor_count"
        case tensorsByFormat = "tensors_by_format"
        case bytesByFormat = "bytes_by_format"
    }
}
