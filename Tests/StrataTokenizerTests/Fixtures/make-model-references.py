# Builds model-references.json from the project's reference runs (transformers and llama.cpp JSON;
# copies of hf-*.json and llamacpp-*.json are in Tests/StrataEngineTests/Fixtures).
# Usage: python3 make-model-references.py REFERENCE_DIR > model-references.json
import json, sys

root = sys.argv[1]
def load(name):
    with open(f"{root}/{name}") as f:
        return json.load(f)

smollm, qwen = {"encode": [], "decode": [], "counts": []}, {"encode": [], "decode": [], "counts": []}

for model, file in ((smollm, "hf-smollm2-135m.json"), (qwen, "hf-qwen2.5-coder-0.5b.json")):
    reference = load(file)
    for prompt in reference["prompts"]:
        model["encode"].append({"text": prompt["prompt"], "ids": prompt["prompt_tokens"], "parseSpecial": False,
                                "source": f"{file} prompts[].prompt_tokens (transformers, add_special_tokens=False)"})
        model["decode"].append({"ids": prompt["greedy_48"], "text": prompt["greedy_48_text"],
                                "source": f"{file} prompts[].greedy_48_text (transformers decode)"})
    model["counts"].append({"file": "pride-and-prejudice.txt", "tokens": reference["perplexity"]["text_tokens"],
                            "source": f"{file} perplexity.text_tokens (whole file, no BOS)"})

llamacpp = load("llamacpp-smollm2-135m.json")
for case in llamacpp["tokenization"]:
    smollm["encode"].append({"text": case["text"], "ids": case["ids"], "parseSpecial": True,
                             "source": "llamacpp-smollm2-135m.json tokenization[] (llama-tokenize, parse_special=true)"})
for case in llamacpp["greedy"]:
    smollm["decode"].append({"ids": case["gen_ids"], "text": case["gen_text"],
                             "source": "llamacpp-smollm2-135m.json greedy[].gen_text"})
for text in llamacpp["perplexity"]["texts"]:
    if text["name"] == "/usr/share/common-licenses/GPL-3":
        smollm["counts"].append({"file": "GPL-3.txt", "tokens": text["tokens"],
                                 "source": "llamacpp-smollm2-135m.json perplexity.texts[GPL-3].tokens (llama-perplexity, no BOS)"})

layers = load("hf-smollm2-135m-layers-gpl3.json")
for case in layers["tokenization"]["strings"]:
    smollm["encode"].append({"text": case["text"], "ids": case["ids_no_special"], "parseSpecial": False,
                             "source": "hf-smollm2-135m-layers-gpl3.json tokenization.strings[].ids_no_special"})
passage = layers["layer_analysis"]
smollm["encode"].append({"text": passage["passage_text"], "ids": passage["passage_ids"], "parseSpecial": False,
                         "source": "hf-smollm2-135m-layers-gpl3.json layer_analysis.passage_ids (GPL-3 Preamble)"})
for case in layers["next_token_and_greedy"]:
    smollm["decode"].append({"ids": case["greedy48_ids"], "text": case["greedy48_text"],
                             "source": "hf-smollm2-135m-layers-gpl3.json next_token_and_greedy[].greedy48_text"})

json.dump({"smollm2-135m": smollm, "qwen2.5-coder-0.5b": qwen}, sys.stdout, ensure_ascii=False, indent=1)
