#!/usr/bin/env bash
# Strata's speculative decoding beside llama.cpp's prompt-lookup decoding (llama-lookup) on
# the same prompts, model file, machine and thread count. llama.cpp is not part of this
# repository: build it yourself and point LLAMA_LOOKUP at its llama-lookup binary.
#
#   LLAMA_LOOKUP=/path/to/llama-lookup Benchmarks/run-lookup-comparison.sh MODEL [TYPE] [TOKENS] [THREADS]
#
# TYPE picks the bundled prompts of one type (default code). Per prompt, in this order:
# llama-lookup with --spec-draft-n-max 0 (llama.cpp's plain decoding, same program), llama-lookup
# (greedy, up to 8 drafts, as Strata's default), then
# `strata bench --speculative --draft auto` and `--draft ngram` on all of them (plain and
# speculative alternated). Writes Benchmarks/results/<date>-<model>-lookup-<type>.json.
set -euo pipefail
model="${1:?usage: run-lookup-comparison.sh MODEL [TYPE] [TOKENS] [THREADS]}"
type="${2:-code}"
tokens="${3:-96}"
threads="${4:-2}"
: "${LLAMA_LOOKUP:?set LLAMA_LOOKUP to the llama-lookup binary of a llama.cpp build}"
cd "$(dirname "$0")/.."
file="${STRATA_MODELS:-$HOME/.cache/strata/models}/$model.gguf"
[ -f "$file" ] || { echo "run-lookup-comparison: $file not found (scripts/fetch-models.sh $model)" >&2; exit 1; }
strata=.build/release/strata
[ -x "$strata" ] || swift build -c release >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The bundled prompts, as strata bench reports them, one JSONL line each.
"$strata" bench --model "$model" --speculative --draft ngram --repetitions 1 --gen-tokens 1 --json 2>/dev/null \
    | python3 -c "import json,sys; [print(json.dumps({'type': p['type'], 'prompt': p['prompt']})) for p in json.load(sys.stdin)['prompts'] if p['type'] == '$type']" \
    >"$work/prompts.jsonl"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
index=0
while IFS= read -r line; do
    prompt=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["prompt"], end="")' "$line")
    "$LLAMA_LOOKUP" -m "$file" -t "$threads" -n "$tokens" --temp 0 --spec-draft-n-max 0 -fa on -p "$prompt" \
        >/dev/null 2>"$work/plain-$index.log"
    "$LLAMA_LOOKUP" -m "$file" -t "$threads" -n "$tokens" --temp 0 --spec-draft-n-max 8 -fa on -p "$prompt" \
        >/dev/null 2>"$work/lookup-$index.log"
    index=$((index + 1))
done <"$work/prompts.jsonl"
for draft in auto ngram; do
    "$strata" bench --model "$model" --threads "$threads" --speculative --draft "$draft" --prompts "$work/prompts.jsonl" \
        --gen-tokens "$tokens" --repetitions 1 --json >"$work/strata-$draft.json" 2>/dev/null
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$work" "$index" "$model" "$type" "$tokens" "$threads" <<'PY'
import json, re, sys, datetime, pathlib
work, count, model, kind, tokens, threads = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
def decoded(path):
    """(tokens, seconds) from llama.cpp's 'decoded N tokens in S seconds' line, or None."""
    match = re.search(r"decoded\s+(\d+) tokens in\s+([\d.]+) s", pathlib.Path(path).read_text())
    return (int(match.group(1)), float(match.group(2))) if match else None
def accept(path):
    match = re.search(r"accept\s+=\s+([\d.]+)%", pathlib.Path(path).read_text())
    return float(match.group(1)) / 100 if match else None
lookup = [decoded(f"{work}/lookup-{i}.log") for i in range(count)]
plain = [decoded(f"{work}/plain-{i}.log") for i in range(count)]
def rate(runs):
    runs = [run for run in runs if run]
    return sum(t for t, _ in runs) / sum(s for _, s in runs) if runs else None
strata = {draft: json.load(open(f"{work}/strata-{draft}.json")) for draft in ("auto", "ngram")}
result = {
    "model": model, "type": kind, "tokens": int(tokens), "threads": int(threads),
    "machine": strata["auto"]["machine"], "commit": strata["auto"]["commit"],
    "llama_plain_tokens_per_second": rate(plain),
    "llama_lookup_tokens_per_second": rate(lookup),
    "llama_lookup_acceptance": [accept(f"{work}/lookup-{i}.log") for i in range(count)],
    "strata": {draft: {key: report[key] for key in ("plain_tokens_per_second", "speculative_tokens_per_second",
                                                   "speedup", "identical_outputs", "acceptance_rate")}
               for draft, report in strata.items()},
}
stem = f"Benchmarks/results/{datetime.date.today()}-{model}-lookup-{kind}.json"
pathlib.Path(stem).write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
PY
