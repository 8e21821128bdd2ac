/// Which tokens end generation, by llama.cpp's rules (`llama-vocab.cpp`, "special_eog_ids").
///
/// GGUF files record EOS and sometimes EOT, but chat and code models stop on other markers
/// too, so llama.cpp also recognises them by their text. Those rules are reproduced here so
/// the engine stops where llama.cpp would.
enum EndOfGeneration {
    /// Token texts that always end generation.
    static let names: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<｜end▁of▁sentence｜>", "[e~[",
    ]

    /// Fill-in-the-middle roles that also end generation; for each, the first token (by id)
    /// carrying one of the names plays the role.
    static let fillInTheMiddleRoles: [[String]] = [
        ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
        ["<|file_sep|>"],
    ]

    /// The end-of-generation tokens, and those of them recognised by name; llama.cpp makes the
    /// latter control tokens whatever the file says, so they decode and parse as markers.
    static func tokens(
        in vocabulary: Vocabulary, tokenIDs: [String: TokenID]
    ) -> (all: Set<TokenID>, recognisedByName: Set<TokenID>) {
        var byName = Set<TokenID>()
        for role in fillInTheMiddleRoles {
            if let id = role.compactMap({ tokenIDs[$0] }).min() { byName.insert(id) }
        }
        for name in names {
            if let id = tokenIDs[name] { byName.insert(id) }
        }
        var result = byName
        if let eos = vocabulary.eosID { result.insert(eos) }
        if let endOfTurn = vocabulary.endOfTurnID { result.insert(endOfTurn) }

        // Models with both `<|return|>` and `<|call|>` (or `<|calls|>` and `<|flush|>`) use
        // `<|end|>` between messages, not to stop; llama.cpp drops it for them.
        let present = Set(result.map { vocabulary.tokens[Int($0)] })
        if let end = tokenIDs["<|end|>"], result.contains(end),
            (present.contains("<|return|>") && present.contains("<|call|>"))
                || (present.contains("<|calls|>") && present.contains("<|flush|>"))
        {
            result.remove(end)
            byName.remove(end)
        }
        return (result, byName)
    }
}
