import StrataEngine
import StrataFormats
import StrataTokenizer

/// Reads a vocabulary the way the engine does.
func loadVocabulary(_ path: String) throws -> Vocabulary {
    try Vocabulary(gguf: GGUFFile.open(path: path))
}
