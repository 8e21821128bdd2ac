"""Independent checks of GGUF files that `strata export` wrote.

    python export_reference.py read EXPORTED --source SOURCE
        Reads EXPORTED with the `gguf` package's GGUFReader and checks it against SOURCE, the
        model it was exported from, using the plan summary the file carries: every block's tensors
        must hold the bytes of its source layer's tensors (or only zeros for a zeroed projection),
        every other tensor the source's bytes, and block_count the number of blocks.

    python export_reference.py greedy EXPORTED --tokens 1,2,3 --count N
        Loads EXPORTED with transformers' GGUF loader (weights dequantized to float32) and
        greedily decodes N tokens after the given prompt token ids.

    python export_reference.py types FILE
        Reads FILE (any GGUF Strata wrote, e.g. by `strata quantize`) with the `gguf` package,
        dequantizes every tensor with it, and prints each tensor's type.

Each prints one JSON object on stdout; `read` exits 1 when a check fails. Run with the
environment `scripts/fetch-python.sh` makes at $STRATA_REFERENCE_VENV.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings


def read(args: argparse.Namespace) -> int:
    import numpy as np
    from gguf import GGUFReader

    started = time.monotonic()
    exported = GGUFReader(args.exported)
    source = GGUFReader(args.source)

    def scalar(reader: GGUFReader, key: str):
        field = reader.get_field(key)
        return None if field is None else field.contents()

    architecture = scalar(exported, "general.architecture")
    plan = json.loads(scalar(exported, "strata.export.plan"))
    problems: list[str] = []
    # the blocks: plan steps that run a sublayer, in order
    steps = [step for step in plan["steps"] if step.get("attention", True) or step.get("ffn", True)]
    layers = [step["layer"] for step in steps]
    block_count = scalar(exported, f"{architecture}.block_count")
    if block_count != len(layers):
        problems.append(f"{architecture}.block_count is {block_count}, the plan has {len(layers)} blocks")
    zero_suffixes = []
    for step in steps:
        suffixes = set()
        if not step.get("attention", True):
            suffixes |= {"attn_output.weight", "attn_output.bias"}
        if not step.get("ffn", True):
            suffixes |= {"ffn_down.weight", "ffn_down.bias"}
        zero_suffixes.append(suffixes)

    source_tensors = {tensor.name: tensor for tensor in source.tensors}
    expected_names = set()
    zeroed = 0
    for tensor in source.tensors:
        parts = tensor.name.split(".", 2)
        if parts[0] == "blk":
            for block, layer in enumerate(layers):
                if int(parts[1]) == layer:
                    expected_names.add(f"blk.{block}.{parts[2]}")
        else:
            expected_names.add(tensor.name)
    found_names = {tensor.name for tensor in exported.tensors}
    if found_names != expected_names:
        problems.append(f"tensor names differ: missing {sorted(expected_names - found_names)[:5]}, "
                        f"unexpected {sorted(found_names - expected_names)[:5]}")
    for tensor in exported.tensors:
        parts = tensor.name.split(".", 2)
        if parts[0] == "blk":
            block, suffix = int(parts[1]), parts[2]
            origin = source_tensors.get(f"blk.{layers[block]}.{suffix}") if block < len(layers) else None
            must_be_zero = block < len(layers) and suffix in zero_suffixes[block]
        else:
            origin, must_be_zero = source_tensors.get(tensor.name), False
        if origin is None:
            continue
        if tensor.tensor_type != origin.tensor_type or list(tensor.shape) != list(origin.shape):
            problems.append(f"{tensor.name}: {tensor.tensor_type.name} {list(tensor.shape)}, "
                            f"source {origin.name} is {origin.tensor_type.name} {list(origin.shape)}")
            continue
        data = np.asarray(tensor.data).view(np.uint8)
        if must_be_zero:
            zeroed += 1
            if data.any():
                problems.append(f"{tensor.name}: expected all-zero bytes (a skipped sublayer)")
        elif not np.array_equal(data, np.asarray(origin.data).view(np.uint8)):
            problems.append(f"{tensor.name}: bytes differ from {origin.name}")

    pattern = scalar(exported, f"{architecture}.attention.sliding_window_pattern")
    print(json.dumps({
        "ok": not problems,
        "problems": problems[:20],
        "architecture": architecture,
        "block_count": block_count,
        "tensors": len(exported.tensors),
        "zeroed_tensors": zeroed,
        "sliding_window_pattern": pattern,
        "method": scalar(exported, "strata.export.method"),
        "source_name": scalar(exported, "strata.export.source"),
        "seconds": round(time.monotonic() - started, 3),
    }))
    return 0 if not problems else 1


def types(args: argparse.Namespace) -> int:
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    started = time.monotonic()
    reader = GGUFReader(args.file)
    found = {}
    problems = []
    for tensor in reader.tensors:
        found[tensor.name] = tensor.tensor_type.name
        values = dequantize(tensor.data, tensor.tensor_type)
        if values.size != int(np.prod(tensor.shape)) or not np.isfinite(values).all():
            problems.append(f"{tensor.name}: {values.size} values, finite: {bool(np.isfinite(values).all())}")
    field = reader.get_field("general.file_type")
    print(json.dumps({
        "ok": not problems,
        "problems": problems[:20],
        "types": found,
        "file_type": None if field is None else field.contents(),
        "seconds": round(time.monotonic() - started, 3),
    }))
    return 0 if not problems else 1


def greedy(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    # the loop below uses the cache argument every 5.x release accepts; its rename is not our concern
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    started = time.monotonic()
    folder, name = os.path.split(os.path.abspath(args.exported))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    loaded = time.monotonic()
    prompt = [int(token) for token in args.tokens.split(",")]
    tokens: list[int] = []
    margins: list[float] = []
    with torch.no_grad():
        output = model(input_ids=torch.tensor([prompt]), use_cache=True)
        for _ in range(args.count):
            logits = output.logits[0, -1].float()
            top = torch.topk(logits, 2)
            tokens.append(int(top.indices[0]))
            margins.append(round(float(top.values[0] - top.values[1]), 4))
            output = model(input_ids=torch.tensor([[tokens[-1]]]), past_key_values=output.past_key_values, use_cache=True)
    config = model.config
    print(json.dumps({
        "tokens": tokens,
        "margins": margins,
        "model_type": config.model_type,
        "layers": config.num_hidden_layers,
        "layer_types": getattr(config, "layer_types", None),
        "load_seconds": round(loaded - started, 2),
        "seconds": round(time.monotonic() - started, 2),
    }))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    reading = commands.add_parser("read", help="check an exported file with the gguf package")
    reading.add_argument("exported")
    reading.add_argument("--source", required=True)
    decoding = commands.add_parser("greedy", help="greedy tokens of an exported file with transformers")
    decoding.add_argument("exported")
    decoding.add_argument("--tokens", required=True, help="prompt token ids, comma-separated")
    decoding.add_argument("--count", type=int, default=8)
    typing = commands.add_parser("types", help="read and dequantize every tensor with the gguf package")
    typing.add_argument("file")
    args = parser.parse_args()
    return {"read": read, "greedy": greedy, "types": types}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
