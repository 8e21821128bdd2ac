#!/usr/bin/env python3
"""Prints the tables of docs/speculative.md from `strata bench --speculative --json` files.

Usage: scripts/speculative-tables.py docs/speculative/MODEL [...]
Each directory holds one JSON file per draft source (auto.json, ngram.json, layers.json,
early-exit-E.json, and a static plan's name).
"""
import json
import pathlib
import sys

ORDER = ["auto", "ngram", "layers", "early-exit", "plan"]


def rank(path):
    name = path.stem
    for index, prefix in enumerate(ORDER[:-1]):
        if name.startswith(prefix):
            return (index, name)
    return (len(ORDER), name)


def cell(summary):
    speculation = summary["speculation"]
    return "%.2fx (%.0f%%, %.2f)" % (summary["speedup"], 100 * speculation["acceptance_rate"],
                                     speculation["mean_accepted_per_verify"])


def cost_line(name, report):
    cost = report["cost_model"]
    verify = cost.get("verify_cost", {})
    parts = ["v(%s) %.2f" % (size, verify[size]) for size in ("2", "4", "8") if size in verify]
    predicted = cost.get("predicted_speedup")
    return "| %s | %.1f | %s | %s | %s | %.2fx |" % (
        name, cost["plain_step_milliseconds"], "%.2f" % cost["draft_step_cost"] if cost["draft_step_cost"] else "-",
        ", ".join(parts) or "-", "%.2fx" % predicted if predicted is not None else "-", cost["measured_speedup"])


def main(directories):
    for directory in map(pathlib.Path, directories):
        # Plan files may sit beside the bench reports; only reports have "by_type".
        reports = [(path.stem, json.loads(path.read_text())) for path in sorted(directory.glob("*.json"), key=rank)]
        reports = [(name, report) for name, report in reports if "by_type" in report]
        if not reports:
            continue
        first = reports[0][1]
        machine = first["machine"]
        print("### %s\n\n%s threads, %s numerics, %d tokens per prompt; %s, %d cores (%s).\n" % (
            directory.name, first["threads"], first["numerics"], first["gen_tokens"],
            machine["cpu"], machine["cores"], " ".join(machine["flags"])))
        print("Speedup over plain decoding in the same run (acceptance rate, drafts accepted per verify pass):\n")
        print("| draft | code | prose | chat | all | plain t/s | runs | identical |")
        print("|---|---|---|---|---|---|---|---|")
        for name, report in reports:
            by_type = report["by_type"]
            print("| %s | %s | %s | %s | %s | %.1f | %d | %s |" % (
                name, *(cell(by_type[kind]) if kind in by_type else "-" for kind in ("code", "prose", "chat")),
                cell(report), report["plain_tokens_per_second"], report["repetitions"],
                "yes" if report["identical_outputs"] else "NO"))
        print("\nCost model as measured (T: plain step; c: draft step / T; v(k): verify of k tokens / T):\n")
        print("| draft | T ms | c | verify | predicted | measured |")
        print("|---|---|---|---|---|---|")
        for name, report in reports:
            print(cost_line(name, report))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
