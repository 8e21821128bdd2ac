import Foundation
import StrataTokenizer

// TEMPORARY until StrataFormats' GGUF reader lands: vocabularies dumped to JSON by Python.
func loadVocabulary(_ path: String) throws -> Vocabulary {
    let names = ["ggml-vocab-gpt-2": "gpt-2", "ggml-vocab-qwen2": "qwen2", "ggml-vocab-llama-bpe": "llama-bpe",
                 "ggml-vocab-starcoder": "starcoder", "smollm2-135m": "smollm2", "qwen2.5-coder-0.5b": "qwen-coder"]
    let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "/tmp/tokvocab/\(names[base]!).json"))) as! [String: Any]
    func id(_ key: String) -> TokenID? { (json[key] as? Int).map(TokenID.init) }
    return Vocabulary(
        tokens: json["tokens"] as! [String],
        tokenTypes: (json["tokenTypes"] as! [Int]).map { TokenType(rawValue: Int32($0)) ?? .normal },
        merges: json["merges"] as! [String], model: json["model"] as! String, preTokenizer: json["pre"] as! String,
        bosID: id("bos"), eosID: id("eos"), endOfTurnID: id("eot"), paddingID: id("pad"), unknownID: id("unk"),
        addBOS: json["addBOS"] as? Bool ?? false, addEOS: json["addEOS"] as? Bool ?? false)
}
