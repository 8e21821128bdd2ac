#!/usr/bin/env bash
# Side-by-side speed of Strata and llama.cpp on the same GGUF file, machine and thread count,
# measured alternately in one run (llama-bench, strata bench, llama-bench again, so drift
# during the run shows). llama.cpp is not part of this repository: build it yourself and
# point LLAMA_BENCH at its llama-bench binary.
#
#   LLAMA_BENCH=/path/to/llama-bench Benchmarks/run-comparison.sh MODEL THREADS [REPETITIONS]
#
# Writes Benchmarks/results/<date>-<model>-t<threads>[-<run>].{strata.json,llama-1.json,llama-2.json}
# (the second and later runs of a day are numbered from 2).
set -euo pipefail
model="${1:?usage: run-comparison.sh MODEL THREADS [REPETITIONS]}"
threads="${2:?threads}"
repetitions="${3:-3}"
: "${LLAMA_BENCH:?set LLAMA_BENCH to the llama-bench binary of a llama.cpp build}"
cd "$(dirname "$0")/.."
models_dir="${STRATA_MODELS:-$HOME/.cache/strata/models}"
file="$models_dir/$model.gguf"
[ -f "$file" ] || { echo "run-comparison: $file not found (scripts/fetch-models.sh $model)" >&2; exit 1; }
strata=.build/release/strata
[ -x "$strata" ] || swift build -c release >/dev/null
stem="Benchmarks/results/$(date -u +%Y-%m-%d)-$model-t$threads"
# a later run the same day gets -2, -3, ...: earlier results are never overwritten
if [ -e "$stem.strata.json" ]; then
    run=2
    while [ -e "$stem-$run.strata.json" ]; do run=$((run + 1)); done
    stem="$stem-$run"
fi
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$LLAMA_BENCH" -m "$file" -t "$threads" -p 512 -n 128 -r "$repetitions" -fa 1 -o json >"$stem.llama-1.json"
"$strata" bench --model "$model" --threads "$threads" --repetitions "$repetitions" --json >"$stem.strata.json"
"$LLAMA_BENCH" -m "$file" -t "$threads" -p 512 -n 128 -r "$repetitions" -fa 1 -o json >"$stem.llama-2.json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$stem" <<'PY'
import json, sys
stem = sys.argv[1]
strata = json.load(open(stem + ".strata.json"))
def llama(path):
    rows = json.load(open(path))
    pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0)
    tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0)
    return pp, tg
(pp1, tg1), (pp2, tg2) = llama(stem + ".llama-1.json"), llama(stem + ".llama-2.json")
pp, tg = strata["prompt_tokens_per_second"], strata["tokens_per_second"]
print(f"{strata['model']} t={strata['threads']}: llama.cpp pp512 {pp1:.1f}/{pp2:.1f} tg128 {tg1:.1f}/{tg2:.1f}; "
      f"strata pp512 {pp:.1f} tg128 {tg:.1f}; ratio pp {pp / ((pp1 + pp2) / 2):.2f} tg {tg / ((tg1 + tg2) / 2):.2f}; "
      f"batch cost {json.dumps(strata['batch_cost'], sort_keys=True)}; peak RSS {strata['peak_rss_bytes'] / 2**20:.0f} MiB")
PY
