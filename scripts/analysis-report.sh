#!/usr/bin/env bash
# Regenerates the material behind docs/analysis-<model>.md: `strata analyze` (JSON + HTML
# report), one plan per method at 10%, 20% and 30% of layer compute removed, and
# `strata eval compare` over all of them (perplexity, LAMBADA, ARC-Easy, tokens/s ratio).
#
#   scripts/analysis-report.sh MODEL [LIMIT]     (LIMIT: documents per task, default 100)
#
# Settings by environment: STRATA (binary; default: a release build of this checkout),
# ANALYSIS_WINDOWS (calibration windows of 512 tokens for analyze, default 4),
# FINERCUT_CONTEXT (tokens of the one window finercut measures on, default 512),
# PERPLEXITY_WINDOWS (windows of 512 tokens compare scores, default 4).
# Steps whose output exists are skipped (but the speed run), so an interrupted run can be
# resumed; delete a file to redo its step. scripts/analysis-tables.py MODEL prints the tables.
#
# Writes docs/analysis/MODEL/{analysis.json,analysis.html,plans/*.json,compare.{json,txt},speed.{json,txt}}.
# Slow: tens of minutes per model on two cores.
set -euo pipefail
model="${1:?usage: scripts/analysis-report.sh MODEL [LIMIT]}"
limit="${2:-100}"
cd "$(dirname "$0")/.."
if [ -z "${STRATA:-}" ]; then
  swift build -c release >/dev/null
  STRATA=.build/release/strata
fi
out="docs/analysis/$model"
mkdir -p "$out/plans"

if [ ! -f "$out/analysis.json" ]; then
  "$STRATA" analyze --model "$model" --windows "${ANALYSIS_WINDOWS:-4}" --context 512 \
    --json "$out/analysis.json" --report "$out/analysis.html"
fi

for method in block-influence angular unified attention-only ffn-only finercut; do
  [ -f "$out/plans/$method-10.json" ] && continue
  extra=(--from-analysis "$out/analysis.json")
  # finercut re-measures every remaining sublayer after each removal: one short calibration
  # window keeps it to minutes; the three fractions share one search
  [ "$method" = finercut ] && extra=(--windows 1 --context "${FINERCUT_CONTEXT:-512}")
  # attention sublayers may be less than 30% (or 20%) of layer compute: then fewer fractions
  for fractions in 0.1,0.2,0.3 0.1,0.2; do
    "$STRATA" plan --model "$model" --method "$method" --compute-fraction "$fractions" "${extra[@]}" \
      --out "$out/plans/$method.json" --force && continue 2
  done
  # one fraction: the plan goes to --out itself
  "$STRATA" plan --model "$model" --method "$method" --compute-fraction 0.1 "${extra[@]}" \
    --out "$out/plans/$method-10.json" --force
done

plans=()
for fraction in 10 20 30; do
  for method in block-influence angular unified attention-only ffn-only finercut; do
    [ -f "$out/plans/$method-$fraction.json" ] && plans+=("$out/plans/$method-$fraction.json")
  done
done

# Quality is deterministic and may be measured on a busy machine; speed is measured apart,
# in a short run of its own, so that it can be repeated when the machine is idle.
if [ ! -f "$out/compare.json" ]; then
  "$STRATA" eval compare --model "$model" --plans "${plans[@]}" --tasks lambada,arc-easy --limit "$limit" \
    --perplexity-windows "${PERPLEXITY_WINDOWS:-4}" --speed-tokens 0 --json "$out/compare.json" --chart "$out/compare.svg" --chart-x compute | tee "$out/compare.txt"
fi
"$STRATA" eval compare --model "$model" --plans "${plans[@]}" --tasks none --perplexity-windows 0 \
  --speed-tokens 64 --speed-repetitions 5 --json "$out/speed.json" --force | tee "$out/speed.txt"
