#!/usr/bin/env bash
# Regenerates the per-token depth comparison behind docs/depth.md: `strata eval compare` of
# the full model, static plans (unhealed and healed, from docs/analysis/MODEL/plans and
# .build/healing/MODEL/plans, which scripts/healing-report.sh makes) and dynamic-exit and
# FFN-skip rows at thresholds chosen to land near the static plans' compute.
#
#   scripts/depth-report.sh MODEL
#
# Settings by environment: STRATA (binary; default: a release build of this checkout),
# PLANS (plan files, space-separated), EXITS and SKIPS (comma-separated thresholds, or
# `match`: a row per distinct plan compute), EXIT_INTERVAL (default 2), TASKS (default
# lambada,arc-easy; `none` for perplexity only), LIMIT (default 200), NAME (the report's file
# name under docs/depth/MODEL; default compare). Progress goes to .build/depth/MODEL/NAME.log.
# The exit maps are fitted on the healing calibration text (a later part of the novel whose
# chapters 1-3 perplexity is measured on).
set -euo pipefail
model="${1:?usage: scripts/depth-report.sh MODEL}"
cd "$(dirname "$0")/.."
if [ -z "${STRATA:-}" ]; then
  swift build -c release >/dev/null
  STRATA=.build/release/strata
fi
calibration=".build/healing/$model/calibration.txt"
if [ ! -f "$calibration" ]; then
  mkdir -p "$(dirname "$calibration")"
  python3 - "$calibration" <<'PY'
import sys
text = open("../shared/data/pride-and-prejudice.txt", encoding="utf-8").read()
open(sys.argv[1], "w", encoding="utf-8").write(text[60000:260000])
PY
fi
out="docs/depth/$model"
name="${NAME:-compare}"
mkdir -p "$out" ".build/depth/$model"
# shellcheck disable=SC2086
"$STRATA" eval compare --model "$model" --plans ${PLANS:?set PLANS to the static plan files} \
  --dynamic-exit "${EXITS:?set EXITS}" --exit-interval "${EXIT_INTERVAL:-2}" --ffn-skip "${SKIPS:?set SKIPS}" \
  --calibration "$calibration" --tasks "${TASKS:-lambada,arc-easy}" --limit "${LIMIT:-200}" \
  --json "$out/$name.json" --chart "$out/$name.svg" --chart-x compute --force 2> ".build/depth/$model/$name.log" \
  | tee "$out/$name.txt"
