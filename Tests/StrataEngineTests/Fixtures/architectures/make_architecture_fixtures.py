"""Makes the tiny Qwen3, Llama 3, Phi-3 and Gemma 3 checkpoints the architecture tests compare against.

For each family: a random-weight model built by Hugging Face transformers from a small config
(seeded), saved as safetensors, converted to GGUF (float32) with llama.cpp's own converter
(convert_hf_to_gguf.py, vendored in the llama-cpp-python sdist), and run by transformers in
float32 on 256 fixed token ids; the logits of 11 of the positions go to FAMILY-tiny.json next
to the GGUF file.

The converter needs a tokenizer; none of these families' tokenizers ships with a package we
can reach, so each borrows the first 512 tokens of a llama.cpp test vocabulary of the same
kind (vendor/llama.cpp/models/ggml-vocab-*.gguf in the same sdist): Qwen2's byte-level BPE for
Qwen3, Llama 3's for Llama 3, Phi-3's SentencePiece for Phi-3, Llama's SentencePiece for Gemma 3.
Only the ids matter to the logits; the vocabulary only has to load.

Gemma 3 gets six layers, so that the file's default pattern (five sliding-window layers, then a
global one) is all there, and a window of 8 positions, so the 256 positions cross it.

Usage (any Python with torch, transformers, safetensors, numpy and sentencepiece):
    python make_architecture_fixtures.py LLAMA_CPP_DIR OUTPUT_DIR [FAMILY ...]
where LLAMA_CPP_DIR is llama_cpp_python-0.3.36/vendor/llama.cpp from the unpacked sdist
(`pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36`).
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

VOCABULARY = 512
# 256 positions: Llama 3's frequency scaling slows rotations whose effect over a dozen positions
# is below 1e-4 in the logits; over 256 it is not
TOKENS = [int(t) for t in np.random.default_rng(7).integers(3, VOCABULARY, size=256)]
ROWS = [0, 1, 2] + list(range(31, 256, 32))


def configs():
    from transformers import Gemma3TextConfig, LlamaConfig, Phi3Config, Qwen3Config

    common = dict(vocab_size=VOCABULARY, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    return {
        # head_dim 32 with 4 heads: the attention width (128) is not the hidden size (64)
        "qwen3": ("qwen2", Qwen3Config(**common, num_key_value_heads=2, head_dim=32, max_position_embeddings=512,
                                       rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)),
        # llama3 RoPE frequency scaling, as Llama 3.1 and 3.2 ship it
        "llama3": ("llama-bpe", LlamaConfig(**common, num_key_value_heads=2, max_position_embeddings=131072,
                                            rope_theta=500_000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                          "high_freq_factor": 4.0,
                                                          "original_max_position_embeddings": 8192})),
        "phi3": ("phi-3", Phi3Config(**common, num_key_value_heads=2, max_position_embeddings=4096,
                                     original_max_position_embeddings=4096, rope_theta=10_000.0, rms_norm_eps=1e-5,
                                     tie_word_embeddings=False, sliding_window=None, rope_scaling=None)),
        # query_pre_attn_scalar = head_dim: the scale GGUF readers assume, as the file cannot say
        "gemma3": ("llama-spm", Gemma3TextConfig(**{**common, "num_hidden_layers": 6}, num_key_value_heads=2, head_dim=32,
                                                 query_pre_attn_scalar=32, sliding_window=8, max_position_embeddings=512,
                                                 rms_norm_eps=1e-6, tie_word_embeddings=True,
                                                 final_logit_softcapping=None, attn_logit_softcapping=None)),
    }


def borrowed_vocabulary(gguf, path):
    """The first VOCABULARY tokens of a llama.cpp test vocabulary, with what goes with them."""
    reader = gguf.GGUFReader(path)

    def field(name):
        return reader.fields.get(name)

    def strings(name):
        f = field(name)
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data] if f else None

    def numbers(name):
        f = field(name)
        return [f.parts[i].tolist()[0] for i in f.data] if f else None

    tokens = strings("tokenizer.ggml.tokens")[:VOCABULARY]
    kept = set(tokens)
    merges = strings("tokenizer.ggml.merges")
    if merges is not None:
        merges = [m for m in merges if all(p in kept for p in m.split(" ", 1)) and m.replace(" ", "", 1) in kept]
    scores = numbers("tokenizer.ggml.scores")
    return dict(model=bytes(field("tokenizer.ggml.model").parts[-1]).decode(),
                pre=bytes(field("tokenizer.ggml.pre").parts[-1]).decode(),
                tokens=tokens, types=numbers("tokenizer.ggml.token_type")[:VOCABULARY],
                scores=scores[:VOCABULARY] if scores else None, merges=merges)


def convert(llama_cpp, model_dir, out_file, vocabulary):
    sys.path.insert(0, str(llama_cpp))
    sys.path.insert(1, str(llama_cpp / "gguf-py"))
    import convert_hf_to_gguf as converter

    original = converter.get_model_class

    def with_borrowed_vocabulary(*args, **kwargs):
        base = original(*args, **kwargs)

        class Borrowed(base):
            model_arch = base.model_arch

            def set_vocab(self):
                w = self.gguf_writer
                w.add_tokenizer_model(vocabulary["model"])
                w.add_tokenizer_pre(vocabulary["pre"])
                w.add_token_list(vocabulary["tokens"])
                w.add_token_types(vocabulary["types"])
                if vocabulary["scores"] is not None:
                    w.add_token_scores(vocabulary["scores"])
                if vocabulary["merges"]:
                    w.add_token_merges(vocabulary["merges"])
                if vocabulary["model"] == "llama":
                    w.add_bos_token_id(1)
                    w.add_eos_token_id(2)

        return Borrowed

    converter.get_model_class = with_borrowed_vocabulary
    argv = sys.argv
    sys.argv = ["convert_hf_to_gguf.py", str(model_dir), "--outtype", "f32", "--outfile", str(out_file),
                "--model-name", out_file.stem]
    try:
        converter.main()
    finally:
        sys.argv = argv
        converter.get_model_class = original


def main():
    llama_cpp, output = Path(sys.argv[1]), Path(sys.argv[2])
    sys.path.insert(1, str(llama_cpp / "gguf-py"))
    import gguf
    import transformers
    from transformers import AutoModelForCausalLM

    wanted = sys.argv[3:]
    for family, (vocab_name, config) in configs().items():
        if wanted and family not in wanted:
            continue
        torch.manual_seed(20261207)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        # norms start at exactly 1: spread them so a misplaced norm shows in the logits
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "norm" in name:
                    parameter.copy_(1 + 0.2 * torch.randn_like(parameter))
        vocabulary = borrowed_vocabulary(gguf, llama_cpp / "models" / f"ggml-vocab-{vocab_name}.gguf")
        gguf_path = output / f"{family}-tiny.gguf"
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder, safe_serialization=True)
            # Gemma's converter trims the embedding to the tokenizer's size, read from here
            (Path(folder) / "tokenizer.json").write_text(json.dumps(
                {"model": {"vocab": {t: i for i, t in enumerate(vocabulary["tokens"])}}, "added_tokens": []}))
            convert(llama_cpp, Path(folder), gguf_path, vocabulary)
        with torch.no_grad():
            logits = model(torch.tensor([TOKENS])).logits[0].to(torch.float64).numpy()[ROWS]
        record = {
            "family": family, "transformers": transformers.__version__, "torch": torch.__version__,
            "config": json.loads(config.to_json_string()), "tokens": TOKENS, "rows": ROWS,
            "logits": [[float(f"{v:.7g}") for v in row] for row in logits],
        }
        (output / f"{family}-tiny.json").write_text(json.dumps(record) + "\n")
        print(f"{family}: {gguf_path.stat().st_size} bytes, logits {np.array(logits).shape}")


if __name__ == "__main__":
    main()
