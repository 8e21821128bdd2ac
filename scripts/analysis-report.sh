#!/usr/bin/env bash
# Regenerates the material behind docs/analysis-<model>.md: `strata analyze` (JSON + HTML
# report), one plan per method at 10%, 20% and 30% of layer compute removed, and
# `strata eval compare` over all of them (perplexity, LAMBADA, ARC-Easy, tokens/s ratio).
#
#   scripts/analysis-report.sh MODEL [LIMIT]     (LIMIT: documents per task, default 100)
#
# Writes docs/analysis/MODEL/{analysis.json,analysis.html,plans/*.json,compare.json,compare.svg,compare.txt}.
# Slow: tens of minutes per model on two cores.
set -euo pipefail
model="${1:?usage: scripts/analysis-report.sh MODEL [LIMIT]}"
limit="${2:-100}"
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
strata=.build/release/strata
out="docs/analysis/$model"
mkdir -p "$out/plans"

"$strata" analyze --model "$model" --windows 4 --context 512 --json "$out/analysis.json" --report "$out/analysis.html"

plans=()
for fraction in 0.1 0.2 0.3; do
  for method in block-influence angular unified attention-only ffn-only finercut; do
    plan="$out/plans/$method-${fraction#0.}0.json"
    extra=(--from-analysis "$out/analysis.json")
    # finercut re-measures after every removal: one calibration window keeps it to minutes
    [ "$method" = finercut ] && extra=(--windows 1 --context 512)
    "$strata" plan --model "$model" --method "$method" --compute-fraction "$fraction" "${extra[@]}" --out "$plan" --force
    plans+=("$plan")
  done
done

"$strata" eval compare --model "$model" --plans "${plans[@]}" --tasks lambada,arc-easy --limit "$limit" \
  --json "$out/compare.json" --chart "$out/compare.svg" | tee "$out/compare.txt"
