#!/usr/bin/env bash
# Measures quantized variants of one model for docs/quantization.md: uniform types, layer-wise
# mixes by each importance score and their reverse-order controls at the size of a uniform
# type, and llama-quantize's presets as Strata writes them (and as llama-quantize writes them,
# when LLAMA_QUANTIZE names a binary built outside this repository). For each file: size,
# bits per layer weight, held-out perplexity, LAMBADA accuracy and decode speed.
#
# usage: scripts/quantization-report.sh MODEL
# env:   REPORT   importance report (default docs/analysis/MODEL/analysis.json)
#        BUDGETS  uniform types whose size the mixes match (default "Q3_K Q4_K")
#        SCORES   importance scores (default "removal block-influence lim zd")
#        REVERSE  score whose reverse order is the control (default: the first of SCORES)
#        TENSOR_SCORES  scores for per-tensor mixes (--allocation tensors; default REVERSE, "" for none)
#        TENSOR_RANGE   --importance-range of the per-tensor mixes (default: strata's; labels then end in -rangeR)
#        KIND_SENSITIVITY  1 to give the per-tensor mixes --kind-sensitivity (needs --calibration in EXTRA;
#                 labels then end in -kinds)
#        PRESETS  llama-quantize mixes (default "Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S")
#        LIMIT    LAMBADA passages (default 200; 0 skips LAMBADA)
#        SPEED    1 to run `strata bench` on every file (default 1)
#        EXTRA    more quantize arguments for every Strata-written file (e.g. an imatrix option)
#        NAME     output directory name under docs/quantization (default MODEL)
#        LLAMA_QUANTIZE  path to llama.cpp's llama-quantize (optional)
#        PYTHON   a Python with the gguf package (default: the reference venv scripts/fetch-python.sh makes)
# Output: docs/quantization/NAME/results.jsonl, one JSON object per file (rerunning skips
# labels already recorded), then scripts/quantization-tables.py renders the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: scripts/quantization-report.sh MODEL}
report=${REPORT:-docs/analysis/$model/analysis.json}
budgets=${BUDGETS:-Q3_K Q4_K}
scores=${SCORES:-removal block-influence lim zd}
reverse_by=${REVERSE:-${scores%% *}}
tensor_scores=${TENSOR_SCORES-$reverse_by}
presets=${PRESETS-Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S}
tensor_range=()
range_suffix=
if [ -n "${TENSOR_RANGE:-}" ]; then
    tensor_range=(--importance-range "$TENSOR_RANGE")
    range_suffix=-range$TENSOR_RANGE
fi
if [ "${KIND_SENSITIVITY:-0}" = 1 ]; then
    tensor_range+=(--kind-sensitivity)
    range_suffix=$range_suffix-kinds
fi
limit=${LIMIT:-200}
speed=${SPEED:-1}
out=docs/quantization/${NAME:-$model}
mkdir -p "$out"
results=$out/results.jsonl
touch "$results"

# a copy of the binary, so rebuilds during a long run do not change what is measured
strata=$(mktemp /tmp/strata-quantization.XXXXXX)
cp .build/release/strata "$strata"
chmod +x "$strata"
work=$(mktemp -d /tmp/strata-quantization-files.XXXXXX)
trap 'rm -rf "$work" "$strata"' EXIT

# held-out text: the bundled Pride and Prejudice text after the first 11,468 characters
# (the part importance analysis calibrates on), as docs/quantization.md describes
heldout=$work/heldout.txt
python3 - "$heldout" <<'EOF'
import sys
source = open("Sources/StrataAnalysis/Evaluation/DefaultPerplexityText.swift", encoding="utf-8").read()
start = source.index('#"""\n') + 5
text = source[start:source.index('"""#', start)]
open(sys.argv[1], "w", encoding="utf-8").write(text[11468:])
EOF

model_file=$("$strata" inspect --model "$model" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])' 2>/dev/null || true)
[ -n "$model_file" ] || model_file=$HOME/.cache/strata/models/$model.gguf

python=${PYTHON:-${STRATA_REFERENCE_VENV:-$HOME/.cache/strata/reference-venv}/bin/python}

recorded() { python3 -c 'import json,sys; print(any(json.loads(l)["label"] == sys.argv[2] for l in open(sys.argv[1]) if l.strip()))' "$results" "$1"; }

# the tensors' names, types and bytes alone (metadata differs between writers), by the gguf package
tensor_digest() {
    "$python" - "$1" <<'EOF'
import hashlib, sys
import gguf
digest = hashlib.sha256()
for tensor in sorted(gguf.GGUFReader(sys.argv[1]).tensors, key=lambda t: t.name):
    digest.update(tensor.name.encode() + tensor.tensor_type.name.encode())
    digest.update(tensor.data.tobytes())
print(digest.hexdigest())
EOF
}

# measure LABEL KIND FILE ARGS: one JSON line for FILE
measure() {
    local label=$1 kind=$2 file=$3 arguments=$4
    local perplexity lambada="null" decode="null" prompt="null"
    perplexity=$("$strata" eval perplexity --model "$file" --file "$heldout" --json 2>/dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity"])')
    if [ "$limit" != 0 ]; then
        lambada=$("$strata" eval lambada --model "$file" --limit "$limit" --json 2>/dev/null \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
    fi
    if [ "$speed" = 1 ]; then
        read -r prompt decode < <("$strata" bench --model "$file" --prompt-tokens 64 --gen-tokens 64 --repetitions 3 \
            --batch-sizes 1 --json 2>/dev/null \
            | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["prompt_tokens_per_second"], d["tokens_per_second"])')
    fi
    local tensors
    tensors=$(tensor_digest "$file")
    python3 - "$results" "$label" "$kind" "$file" "$arguments" "$perplexity" "$lambada" "$decode" "$prompt" "$limit" "$tensors" <<'EOF'
import hashlib, json, os, sys
results, label, kind, path, arguments, perplexity, lambada, decode, prompt, limit, tensors = sys.argv[1:]
summary = {}
if os.path.exists(path + ".json"):
    summary = json.load(open(path + ".json"))
digest = hashlib.sha256()
with open(path, "rb") as handle:
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
row = {
    "label": label, "kind": kind, "arguments": arguments,
    "file_bytes": os.path.getsize(path), "sha256": digest.hexdigest(), "tensors_sha256": tensors,
    "layer_bits_per_weight": summary.get("layer_bits_per_weight"),
    "layer_formats": summary.get("layer_formats"),
    "perplexity": float(perplexity),
    "lambada": None if lambada == "null" else float(lambada), "lambada_passages": int(limit),
    "decode_tokens_per_second": None if decode == "null" else float(decode),
    "prompt_tokens_per_second": None if prompt == "null" else float(prompt),
}
with open(results, "a") as handle:
    handle.write(json.dumps(row) + "\n")
print(f"{label}: {row['layer_bits_per_weight']} bpw, {row['file_bytes']} bytes, perplexity {row['perplexity']:.3f}, "
      f"lambada {row['lambada']}, decode {row['decode_tokens_per_second']}", file=sys.stderr)
EOF
}

# quantized LABEL KIND ARGS...: writes the file with Strata, measures it, deletes it
quantized() {
    local label=$1 kind=$2
    shift 2
    [ "$(recorded "$label")" = True ] && return 0
    local file=$work/$label.gguf
    # shellcheck disable=SC2086
    "$strata" quantize --model "$model" --out "$file" --force --json "$@" $EXTRA > "$file.json"
    measure "$label" "$kind" "$file" "$*"
    rm -f "$file" "$file.json"
}

EXTRA=${EXTRA:-}
[ "$(recorded source)" = True ] || measure source source "$model_file" ""
for budget in $budgets; do
    quantized "uniform-$budget" uniform --target-bpw "$budget" --importance "$report" --by "$reverse_by" --spread 1
    for score in $scores; do
        quantized "$score-at-$budget" mix --target-bpw "$budget" --importance "$report" --by "$score" --spread 2
    done
    quantized "reverse-$reverse_by-at-$budget" reverse --target-bpw "$budget" --importance "$report" --by "$reverse_by" \
        --spread 2 --reverse
    for score in $tensor_scores; do
        quantized "tensors-$score-at-$budget$range_suffix" tensors --target-bpw "$budget" --importance "$report" \
            --by "$score" --allocation tensors "${tensor_range[@]}"
    done
    if [ -n "$tensor_scores" ]; then
        quantized "tensors-reverse-$reverse_by-at-$budget$range_suffix" tensors-reverse --target-bpw "$budget" \
            --importance "$report" --by "$reverse_by" --allocation tensors --reverse "${tensor_range[@]}"
    fi
done
for preset in $presets; do
    quantized "strata-$preset" preset --type "$preset"
    if [ -n "${LLAMA_QUANTIZE:-}" ] && [ "$(recorded "llama-quantize-$preset")" != True ]; then
        file=$work/llama-quantize-$preset.gguf
        "$LLAMA_QUANTIZE" --allow-requantize "$model_file" "$file" "$preset" > "$work/llama-quantize.log" 2>&1
        # the same tensors as Strata's file compute the same: record that instead of measuring again
        python3 - "$results" "strata-$preset" "llama-quantize-$preset" "$(tensor_digest "$file")" "$(stat -c %s "$file")" <<'EOF' \
            || measure "llama-quantize-$preset" llama-quantize "$file" "--allow-requantize $preset"
import json, sys
results, strata_label, label, digest, size = sys.argv[1:]
rows = [json.loads(line) for line in open(results) if line.strip()]
twin = next((row for row in rows if row["label"] == strata_label and row.get("tensors_sha256") == digest), None)
if twin is None:
    sys.exit(1)
row = dict(twin, label=label, kind="llama-quantize", arguments="--allow-requantize " + strata_label.split("-", 1)[1],
           file_bytes=int(size), sha256=None, layer_bits_per_weight=None, layer_formats=None, same_tensors_as=strata_label)
open(results, "a").write(json.dumps(row) + "\n")
print(f"{label}: the same tensors as {strata_label}", file=sys.stderr)
EOF
        rm -f "$file"
    fi
done
echo "results: $results" >&2
