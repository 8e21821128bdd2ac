#!/usr/bin/env python3
"""Markdown tables for docs/quantization.md from docs/quantization/NAME/results.jsonl
(written by scripts/quantization-report.sh). usage: scripts/quantization-tables.py NAME..."""
import json
import re
import sys


def load(name):
    with open(f"docs/quantization/{name}/results.jsonl") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def cell(value, digits):
    return "–" if value is None else f"{value:.{digits}f}"


def row(entry, source):
    size = entry["file_bytes"] / 1e6
    bits = cell(entry["layer_bits_per_weight"], 2)
    speed = entry["decode_tokens_per_second"]
    ratio = f" ({speed / source['decode_tokens_per_second']:.2f}x)" if speed and source["decode_tokens_per_second"] else ""
    return (f"| {entry['label']} | {bits} | {size:.1f} | {entry['perplexity']:.2f} | "
            f"{cell(entry['lambada'], 3)} | {cell(speed, 1)}{ratio} |")


def budget_of(label):
    """The uniform type whose size a row matches: "Q3_K" in "uniform-Q3_K", "removal-at-Q3_K-range16"."""
    found = re.search(r"(?:^uniform-|-at-)(Q\d_K)", label)
    return found.group(1) if found else None


def main(names):
    header = ("| file | bits per layer weight | MB | held-out perplexity | LAMBADA | decode tokens/s |\n"
              "|---|---|---|---|---|---|")
    for name in names:
        entries = load(name)
        source = next(entry for entry in entries if entry["kind"] == "source")
        passages = {entry["lambada_passages"] for entry in entries if entry["lambada"] is not None}
        print(f"### {name} (LAMBADA: first {', '.join(map(str, sorted(passages))) or '–'} passages)\n")
        print(header)
        print(row(source, source))
        budgets = []
        for entry in entries:
            if entry["kind"] in ("uniform", "mix", "reverse", "tensors", "tensors-reverse"):
                budget = budget_of(entry["label"])
                if budget and budget not in budgets:
                    budgets.append(budget)
        for budget in budgets:
            for kind in ("uniform", "mix", "reverse", "tensors", "tensors-reverse"):
                for entry in entries:
                    if entry["kind"] == kind and budget_of(entry["label"]) == budget:
                        print(row(entry, source))
        digests = {}
        for entry in entries:
            if entry["kind"] in ("preset", "llama-quantize"):
                print(row(entry, source))
                digests.setdefault(entry["label"].split("-")[-1], []).append(entry["tensors_sha256"])
        same = [preset for preset, found in digests.items() if len(found) == 2 and found[0] == found[1]]
        if same:
            print(f"\nStrata and llama-quantize wrote the same tensors (types and bytes) for: {', '.join(same)}.")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
