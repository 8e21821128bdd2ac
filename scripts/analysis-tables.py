#!/usr/bin/env python3
"""Prints the markdown tables of docs/analysis-smollm2.md for one model from the files
scripts/analysis-report.sh wrote (docs/analysis/MODEL/{analysis,compare}.json).

    scripts/analysis-tables.py MODEL
"""
import json
import sys
from pathlib import Path

METHODS = ["block-influence", "angular", "unified", "finercut", "attention-only", "ffn-only"]


def main() -> None:
    model = sys.argv[1]
    folder = Path(__file__).resolve().parent.parent / "docs" / "analysis" / model
    compare = json.loads((folder / "compare.json").read_text())
    analysis = json.loads((folder / "analysis.json").read_text())
    entries = {entry["name"]: entry for entry in compare["entries"]}
    # Speed from the separate speed run when there is one (see analysis-report.sh).
    speed_file = folder / "speed.json"
    generated_tokens = compare["generated_tokens"]
    if speed_file.exists():
        speed = json.loads(speed_file.read_text())
        generated_tokens = speed["generated_tokens"]
        for entry in speed["entries"]:
            if entry["name"] in entries:
                entries[entry["name"]]["generation"] = entry.get("generation")
                entries[entry["name"]]["speed_ratio"] = entry.get("speed_ratio")
    full = entries["full"]

    def task(entry, name):
        return next((t for t in entry["tasks"] if t["task"] == name), None)

    def row(label, entry):
        ppl = (entry.get("perplexity") or {}).get("perplexity")
        lam, arc = task(entry, "lambada"), task(entry, "arc-easy")
        ratio = entry.get("speed_ratio")
        cells = [
            label,
            f"{entry['compute_fraction'] * 100:.1f}%",
            f"{ppl:.2f} ({ppl / full['perplexity']['perplexity']:.2f}x)" if ppl else "–",
            f"{lam['accuracy']:.2f}" if lam else "–",
            f"{arc['accuracy']:.2f} / {arc['accuracy_per_char']:.2f}" if arc else "–",
            f"{ratio:.2f}x" if ratio else "–",
        ]
        return "| " + " | ".join(cells) + " |"

    limit = compare.get("limit")
    print(f"Perplexity on {compare['perplexity_text']}; LAMBADA and ARC-Easy on the first {limit} documents; "
          f"generation speed over {generated_tokens} tokens, plans interleaved.\n")
    print("| plan | layer compute kept | perplexity | LAMBADA acc | ARC-Easy acc / acc_per_char | tokens/s vs full |")
    print("|---|---|---|---|---|---|")
    speed = (full.get("generation") or {}).get("median")
    print(row(f"full model ({speed:.1f} tokens/s)" if speed else "full model", full))
    for percent in (10, 20, 30):
        for method in METHODS:
            name = f"{method}-{percent}"
            if name in entries:
                print(row(f"{method} {percent}%", entries[name]))
            else:
                print(f"| {method} {percent}% | – | not possible: the method cannot remove this much | | | |")

    layers = analysis["layer_count"]
    order = sorted(range(layers), key=lambda l: analysis["perplexity_without_layer"][l])
    print(f"\nLayers whose removal costs least (perplexity without the layer; full: {analysis['perplexity_full']:.2f}): "
          + ", ".join(f"{l} ({analysis['perplexity_without_layer'][l]:.2f})" for l in order[:6])
          + "; most: " + ", ".join(f"{l} ({analysis['perplexity_without_layer'][l]:.3g})" for l in order[-3:][::-1]) + ".")


if __name__ == "__main__":
    main()
