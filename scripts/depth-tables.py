#!/usr/bin/env python3
"""Prints the tables of docs/depth.md from `strata eval compare --json` reports.

    scripts/depth-tables.py docs/depth/MODEL/compare.json [more.json ...]

One markdown table per report: every row's measured compute, layers per token, share of
tokens that exited, the exit checks' cost (outside the compute column), perplexity (and its
ratio to the full model's), task accuracy and decode speed against the full model.
"""
import json
import sys


def cell(value, pattern):
    return pattern % value if value is not None else "-"


for path in sys.argv[1:]:
    report = json.load(open(path))
    entries = report["entries"]
    tasks = [task["task"] for task in entries[0].get("tasks", [])]
    full = entries[0].get("perplexity", {}).get("perplexity")
    header = ["row", "method", "compute", "layers/token", "exited", "checks", "perplexity"] + tasks + ["speed vs full"]
    print(f"{report['model']} ({path})\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for entry in entries:
        depth = entry.get("depth") or {}
        perplexity = entry.get("perplexity", {}).get("perplexity")
        ratio = f" ({perplexity / full:.2f}x)" if perplexity and full else ""
        exits = bool(depth.get("usage", {}).get("exit_checks"))
        row = [entry["name"], entry.get("method") or "-", f"{entry['compute_fraction']:.3f}",
               cell(depth.get("layers_per_token"), "%.1f"),
               cell(100 * depth["exited_fraction"] if exits else None, "%.0f%%"),
               cell(depth["check_fraction"] if exits else None, "+%.3f"),
               (f"{perplexity:.2f}" + ratio) if perplexity else "-"]
        for task in tasks:
            found = next((t for t in entry.get("tasks", []) if t["task"] == task), None)
            row.append(cell(found and found["accuracy"], "%.3f"))
        row.append(cell(entry.get("speed_ratio"), "%.2fx"))
        print("| " + " | ".join(row) + " |")
    print()
