#!/usr/bin/env python3
"""The layer study of `hf-smollm2-135m-layers.json` on fewer windows, for the default test
tier: Hugging Face transformers (float32 on the GGUF file's dequantized weights), the same
rules as the 4-window study, on the first WINDOWS non-overlapping windows of CONTEXT tokens
(default 1 and 512) of *Pride and Prejudice* (no BOS).

- block_influence[l] = 1 - mean over tokens of cos(input of layer l, output of layer l)
- angular_distance.values[l][n-1] = arccos(cos(h_l, h_{l+n}))/pi at each window's last token,
  averaged over windows; h_l = input of layer l, h_L = output of the last layer (before the
  final norm); null where l + n > L; n = 1...15
- perplexity_full, perplexity_without_layer[l] (layer l removed entirely), pooled over windows

    /tmp/refvenv/bin/python make_layer_references.py MODEL_DIR ../../StrataEngineTests/Fixtures/pride-and-prejudice.txt OUT.json [WINDOWS [CONTEXT]]
"""
import json
import math
import os
import sys

import torch
import transformers

SPANS = 15


def main():
    model_dir, text_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    windows = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    context = int(sys.argv[5]) if len(sys.argv) > 5 else 512
    path = os.path.join(model_dir, "smollm2-135m.gguf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, gguf_file=path)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=path, dtype=torch.float32)
    model.eval()
    ids = tokenizer(open(text_path, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    layers = list(model.model.layers)
    count = len(layers)
    inputs, outputs = {}, {}

    def hook(index):
        def capture(module, args, kwargs, output):
            hidden = args[0] if args else kwargs["hidden_states"]
            inputs[index] = hidden[0].double()
            outputs[index] = (output[0] if isinstance(output, tuple) else output)[0].double()
        return capture

    handles = [layer.register_forward_hook(hook(index), with_kwargs=True) for index, layer in enumerate(layers)]

    def nll(window):
        logits = model(window, use_cache=False).logits[0].double()
        return float(torch.nn.functional.cross_entropy(logits[:-1], window[0, 1:], reduction="sum"))

    influence = [0.0] * count
    angular = [[0.0 if l + n <= count else None for n in range(1, SPANS + 1)] for l in range(count)]
    full_nll, tokens_scored = 0.0, 0
    batches = [torch.tensor([ids[w * context:(w + 1) * context]]) for w in range(windows)]
    with torch.no_grad():
        for window in batches:
            full_nll += nll(window)
            tokens_scored += context - 1
            for l in range(count):
                cos = torch.nn.functional.cosine_similarity(inputs[l], outputs[l], dim=-1)
                influence[l] += float((1 - cos).mean()) / windows
            streams = [inputs[l][-1] for l in range(count)] + [outputs[count - 1][-1]]
            for l in range(count):
                for n in range(1, SPANS + 1):
                    if l + n <= count:
                        cos = float(torch.nn.functional.cosine_similarity(streams[l], streams[l + n], dim=0))
                        angular[l][n - 1] += math.acos(max(-1.0, min(1.0, cos))) / math.pi / windows
        for handle in handles:
            handle.remove()
        without = []
        for l in range(count):
            model.model.layers = torch.nn.ModuleList(layers[:l] + layers[l + 1:])
            total = sum(nll(window) for window in batches)
            without.append(round(math.exp(total / tokens_scored), 4))
            print("without layer", l, without[-1], file=sys.stderr)
        model.model.layers = torch.nn.ModuleList(layers)
    result = {
        "producer": f"transformers {transformers.__version__}, torch {torch.__version__}, float32 from GGUF dequantization",
        "layers": {
            "layer_count": count, "windows": windows, "context": context,
            "block_influence": [round(v, 6) for v in influence],
            "angular_distance": {"values": [[None if v is None else round(v, 6) for v in row] for row in angular]},
            "perplexity_full": round(math.exp(full_nll / tokens_scored), 4),
            "perplexity_without_layer": without,
        },
    }
    json.dump(result, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
