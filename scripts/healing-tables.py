#!/usr/bin/env python3
"""Prints the healed-versus-unhealed table of docs/healing.md for one model from
docs/healing/MODEL/compare.json and fits/*.json (written by scripts/healing-report.sh).

    scripts/healing-tables.py MODEL
"""
import json
import sys
from pathlib import Path

model = sys.argv[1]
base = Path(__file__).resolve().parent.parent / "docs" / "healing" / model
entries = {entry["name"]: entry for entry in json.loads((base / "compare.json").read_text())["entries"]}
full = entries["full"]["perplexity"]["perplexity"]


def fit_summary(name):
    path = base / "fits" / f"{name}.json"
    if not path.exists():
        return "", ""
    report = json.loads(path.read_text())[0]
    cuts = report["cuts"]
    ratios = [cut.get("held_out_error_ratio", cut.get("heldOutErrorRatio")) for cut in cuts]
    ratios = [ratio for ratio in ratios if ratio is not None]
    ridges = sorted({cut.get("ridge", report.get("ridge")) for cut in cuts if cut.get("ridge", report.get("ridge")) is not None})
    span = f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else (f"{ratios[0]:.2f}" if ratios else "-")
    return f"{len(cuts)} ({span})", f"{report['seconds']:.0f} s, ridge {', '.join(f'{r:g}' for r in ridges)}"


print(f"full model: perplexity {full:.2f}\n")
print("| plan | compute removed | unhealed ppl (increase) | healed ppl (increase) | increase kept | cuts (held-out error ratio) | fit |")
print("|---|---|---|---|---|---|---|")
for name, entry in entries.items():
    if name == "full" or name.endswith("-healed") or f"{name}-healed" not in entries:
        continue
    healed = entries[f"{name}-healed"]
    plain_ppl = entry["perplexity"]["perplexity"]
    healed_ppl = healed["perplexity"]["perplexity"]
    kept = (healed_ppl - full) / (plain_ppl - full) if plain_ppl > full else float("nan")
    cuts, fit = fit_summary(name)
    print(f"| {name} | {100 * (1 - entry['compute_fraction']):.1f}% | {plain_ppl:.2f} (+{plain_ppl - full:.2f}) "
          f"| {healed_ppl:.2f} (+{healed_ppl - full:.2f}) | {kept:.2f} | {cuts} | {fit} |")
