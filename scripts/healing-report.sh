#!/usr/bin/env bash
# Regenerates the material behind docs/healing.md: static plans at 10%, 20%, 25% and 30% of
# layer compute removed, each healed with `strata plan --heal linear`, and `strata eval
# compare` of every plan healed and unhealed (perplexity on the built-in chapters 1-3 of
# Pride and Prejudice).
#
#   scripts/healing-report.sh MODEL [METHODS]    (METHODS: comma-separated, default
#                                                 block-influence,angular,unified,ffn-only)
#
# The calibration text of the fits is a later part of the same novel (characters 60,000 to
# 260,000 of ../shared/data/pride-and-prejudice.txt, or $CALIBRATION_FILE): never the
# chapters perplexity is measured on. Plans are taken from docs/analysis/MODEL/plans when
# they exist there; others are built from docs/analysis/MODEL/analysis.json, or measured.
# Settings by environment: STRATA (binary; default: a release build of this checkout),
# HEAL_WINDOWS (calibration windows of 512 tokens, the last held out; default 8),
# HEAL_SITE (ffn or stream; default stream), FRACTIONS (default "10 20 25 30").
# Steps whose output exists are skipped. The fitted maps (tens of MB) stay under
# .build/healing/MODEL; docs/healing/MODEL gets the fit reports and the comparison.
set -euo pipefail
model="${1:?usage: scripts/healing-report.sh MODEL [METHODS]}"
methods="${2:-block-influence,angular,unified,ffn-only}"
cd "$(dirname "$0")/.."
if [ -z "${STRATA:-}" ]; then
  swift build -c release >/dev/null
  STRATA=.build/release/strata
fi
site="${HEAL_SITE:-stream}"
work=".build/healing/$model"
out="docs/healing/$model"
mkdir -p "$work/plans" "$out/fits"
calibration="${CALIBRATION_FILE:-$work/calibration.txt}"
if [ ! -f "$calibration" ]; then
  python3 - "$calibration" <<'EOF'
import sys
text = open("../shared/data/pride-and-prejudice.txt", encoding="utf-8").read()
open(sys.argv[1], "w", encoding="utf-8").write(text[60000:260000])
EOF
fi
analysis="docs/analysis/$model/analysis.json"

unhealed=()
healed=()
for fraction in ${FRACTIONS:-10 20 25 30}; do
  for method in ${methods//,/ }; do
    plan="docs/analysis/$model/plans/$method-$fraction.json"
    if [ ! -f "$plan" ]; then
      plan="$work/plans/$method-$fraction.json"
      if [ ! -f "$plan" ]; then
        extra=()
        [ -f "$analysis" ] && [ "$method" != unified ] && extra=(--from-analysis "$analysis")
        "$STRATA" plan --model "$model" --method "$method" --compute-fraction "0.$fraction" "${extra[@]}" \
          --out "$plan" --force || { echo "no $method plan at $fraction%" >&2; continue; }
      fi
    fi
    target="$work/plans/$method-$fraction-healed.json"
    if [ ! -f "$target" ]; then
      "$STRATA" plan --model "$model" --plan "$plan" --heal linear --heal-site "$site" --calibration "$calibration" \
        --heal-windows "${HEAL_WINDOWS:-8}" --out "$target" --force --json > "$out/fits/$method-$fraction.json"
    fi
    unhealed+=("$plan")
    healed+=("$target")
  done
done

if [ ! -f "$out/compare.json" ]; then
  "$STRATA" eval compare --model "$model" --plans "${unhealed[@]}" --plans "${healed[@]}" --tasks none \
    --speed-tokens 0 --json "$out/compare.json" | tee "$out/compare.txt"
fi
