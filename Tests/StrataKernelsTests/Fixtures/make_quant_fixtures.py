#!/usr/bin/env python3
"""Writes the dequantization fixtures for StrataKernelsTests.

For each format, `Quantization/<FORMAT>.blocks` holds raw GGUF block bytes and
`Quantization/<FORMAT>.values` the little-endian float32 values that the `gguf` package's
`gguf.quants.dequantize` returns for them. Blocks come from real tensors of the models where
the format occurs; other formats are quantized from a seeded pseudo-random array, or, where
the package cannot quantize, are random block bytes with finite fp16 scales.

Usage: python3 make_quant_fixtures.py [--models DIR]   (default ~/.cache/strata/models)
"""
import argparse
import importlib.metadata
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGML_QUANT_SIZES

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Quantization")

# format -> (model, tensor, first block, block count). Odd block counts on purpose.
FROM_MODELS = {
    T.F32: ("smollm2-135m", "blk.0.attn_norm.weight", 64, 96),
    T.Q4_1: ("smollm2-135m", "blk.0.ffn_down.weight", 1000, 5),
    T.Q8_0: ("smollm2-135m", "token_embd.weight", 7000, 5),
    T.Q5_0: ("qwen2.5-coder-0.5b", "token_embd.weight", 90000, 5),
    T.Q4_K: ("qwen2.5-coder-0.5b", "blk.11.ffn_down.weight", 300, 3),
    T.Q6_K: ("qwen2.5-coder-0.5b", "blk.0.ffn_down.weight", 300, 3),
}

# formats absent from the models: block count to synthesize
SYNTHESIZED = {T.F16: 96, T.BF16: 96, T.Q4_0: 5, T.Q5_1: 5, T.Q5_K: 3, T.Q2_K: 3, T.Q3_K: 3}

# byte offsets of the fp16 scales of the formats synthesized from random bytes
HALF_SCALES = {T.Q5_K: [0, 2], T.Q2_K: [80, 82], T.Q3_K: [108]}


def model_blocks(models, qtype, model, tensor_name, first, count):
    reader = gguf.GGUFReader(os.path.join(models, model + ".gguf"))
    tensor = next(t for t in reader.tensors if t.name == tensor_name)
    assert tensor.tensor_type == qtype, (tensor_name, tensor.tensor_type)
    _, type_size = GGML_QUANT_SIZES[qtype]
    raw = np.asarray(tensor.data).view(np.uint8).reshape(-1)
    blocks = raw[first * type_size:(first + count) * type_size].copy()
    assert blocks.size == count * type_size, (tensor_name, "too few blocks")
    return blocks


def random_floats(rng, n):
    # mix of scales so blocks have different ranges, plus a few outliers
    values = rng.standard_normal(n).astype(np.float32) * np.float32(0.05)
    values *= np.repeat(rng.uniform(0.1, 4.0, n // 32 + 1).astype(np.float32), 32)[:n]
    return values


def special_halves():
    # zeros, subnormals, the normal boundary, max, infinities and a quiet NaN
    bits = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF,
            0x7C00, 0xFC00, 0x7E00]
    return np.array(bits, dtype=np.uint16)


def synthesized_blocks(rng, qtype, count):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    if qtype == T.F16:
        halves = gguf.quants.quantize(random_floats(rng, count), T.F16).view(np.uint16)
        specials = special_halves()
        halves[:len(specials)] = specials
        return halves.view(np.uint8)
    if qtype == T.BF16:
        brains = gguf.quants.quantize(random_floats(rng, count), T.BF16).view(np.uint16)
        specials = np.array([0x0000, 0x8000, 0x0001, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0], dtype=np.uint16)
        brains[:len(specials)] = specials
        return brains.view(np.uint8)
    try:
        return gguf.quants.quantize(random_floats(rng, count * block_size), qtype).view(np.uint8).reshape(-1)
    except NotImplementedError:
        pass
    # The package cannot quantize this type: random bytes with finite, modest fp16 scales.
    offsets = HALF_SCALES[qtype]
    blocks = rng.integers(0, 256, size=(count, type_size), dtype=np.uint8)
    scales = rng.uniform(0.0005, 0.02, size=(count, len(offsets))).astype(np.float16).view(np.uint8)
    for index, offset in enumerate(offsets):  # d (and dmin)
        blocks[:, offset:offset + 2] = scales[:, 2 * index:2 * index + 2]
    return blocks.reshape(-1)


def write(qtype, blocks):
    values = gguf.quants.dequantize(blocks, qtype).astype(np.float32, copy=False).reshape(-1)
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    assert blocks.size % type_size == 0 and values.size == blocks.size // type_size * block_size
    name = qtype.name
    blocks.astype(np.uint8).tofile(os.path.join(OUT, name + ".blocks"))
    values.astype("<f4").tofile(os.path.join(OUT, name + ".values"))
    print(f"{name}: {blocks.size // type_size} blocks, {values.size} values")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=os.path.expanduser("~/.cache/strata/models"))
    arguments = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    print(f"gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}", file=sys.stderr)
    for qtype, (model, tensor, first, count) in FROM_MODELS.items():
        write(qtype, model_blocks(arguments.models, qtype, model, tensor, first, count))
    rng = np.random.default_rng(20261123)
    for qtype, count in SYNTHESIZED.items():
        write(qtype, synthesized_blocks(rng, qtype, count))


if __name__ == "__main__":
    main()
