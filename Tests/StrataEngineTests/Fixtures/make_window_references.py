#!/usr/bin/env python3
"""Per-window perplexity references from Hugging Face transformers (float32 on the GGUF file's
dequantized weights), so tests can check any prefix of the 8 windows the aggregate reference
(`hf-<model>.json`) covers: the default test tier scores the first windows only.

Same producer and rule as the aggregate figures: transformers loads the GGUF file itself
(`gguf_file=`), the whole text is tokenized without special tokens, cut into non-overlapping
512-token windows from the start, and each window scores all 511 next-token predictions. For
Gemma 3 (whose tokenizer adds BOS) each window's first token is replaced by BOS, the rule of
`bos_first` in `hf-gemma3-270m.json` and of llama-perplexity.

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch transformers gguf
    /tmp/refvenv/bin/python make_window_references.py MODEL_DIR OUT.json [MODEL ...]
"""
import json
import math
import os
import sys

import torch
import transformers

FILES = {"smollm2-135m": "smollm2-135m.gguf", "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b.gguf",
         "gemma3-270m": "gemma3-270m.gguf"}
TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pride-and-prejudice.txt")
CONTEXT = 512
WINDOWS = int(os.environ.get("WINDOWS", "8"))


def windows_for(model_dir, name):
    path = os.path.join(model_dir, FILES[name])
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, gguf_file=path)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=path, torch_dtype=torch.float32)
    model.eval()
    ids = tokenizer(open(TEXT, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    results = []
    with torch.no_grad():
        for index in range(WINDOWS):
            window = torch.tensor([ids[index * CONTEXT:(index + 1) * CONTEXT]])
            if tokenizer.add_bos_token:
                window[0, 0] = tokenizer.bos_token_id
            logits = model(window).logits[0].double()
            losses = torch.nn.functional.cross_entropy(logits[:-1], window[0, 1:], reduction="none")
            total = float(losses.sum())
            results.append({"window": index, "tokens_scored": CONTEXT - 1, "nll_sum": round(total, 6),
                            "perplexity": round(math.exp(total / (CONTEXT - 1)), 6)})
            print(name, index, results[-1]["perplexity"], file=sys.stderr)
    return {"text_tokens": len(ids), "context": CONTEXT, "windows": results,
            "producer": f"transformers {transformers.__version__}, torch {torch.__version__}, float32 from GGUF dequantization"}


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or list(FILES)
    json.dump({name: windows_for(model_dir, name) for name in names}, open(out, "w"), indent=1)
    # the text's token ids too, for checking a tokenizer against transformers' on a long text
    if os.environ.get("TOKENS_OUT"):
        for name in names:
            path = os.path.join(model_dir, FILES[name])
            tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, gguf_file=path)
            ids = tokenizer(open(TEXT, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
            json.dump(ids, open(os.environ["TOKENS_OUT"] + f".{name}.json", "w"))


if __name__ == "__main__":
    main()
