#!/usr/bin/env python3
"""Writes the quantizer fixtures for StrataKernelsTests (see README.md, "Quantizers/").

`Quantizers/rows.f32` holds ROWS seeded float32 rows of WIDTH values (several distributions, an
all-zero row, ties for the rounding rules, and a row of real weights); `Quantizers/importance.f32`
one importance vector per row. For every format the `gguf` package can quantize,
`Quantizers/gguf/<FORMAT>.bin` holds its bytes for each row, one row after the other.

The llama.cpp C reference bytes (`Quantizers/ggml/`) are made from these two files by a small
C program linked against libggml-base; README.md says how.

Usage: python3 make_quantizer_fixtures.py [--models DIR]   (default ~/.cache/strata/models)
"""
import argparse
import importlib.metadata
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Quantizers")
WIDTH = 512
GGUF_FORMATS = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]


def real_row(models):
    # 512 values of a real weight row: smollm2-135m's token embedding row 1000 (Q8_0 in the file)
    reader = gguf.GGUFReader(os.path.join(models, "smollm2-135m.gguf"))
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    values = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)
    return values.reshape(-1, values.shape[-1])[1000, :WIDTH].astype(np.float32)


def rows(rng, models):
    n = WIDTH
    normal = lambda scale: (rng.standard_normal(n) * scale).astype(np.float32)
    out = []
    out.append(normal(0.02))                                                        # 0 weight-like
    blockwise = normal(0.05) * np.repeat(rng.uniform(0.1, 4.0, n // 32), 32).astype(np.float32)
    out.append(blockwise.astype(np.float32))                                        # 1 scale per 32
    out.append(rng.uniform(-1, 1, n).astype(np.float32))                            # 2 uniform
    out.append((rng.standard_t(2, n) * 0.01).astype(np.float32))                    # 3 heavy tails
    outliers = normal(0.02)
    outliers[rng.choice(n, 6, replace=False)] *= 60                                 # 4 outliers
    out.append(outliers)
    out.append(np.zeros(n, dtype=np.float32))                                       # 5 all zero
    half = normal(0.03)
    half[:256] = 0                                                                  # 6 zero super-block
    out.append(half)
    out.append(np.abs(normal(0.02)) + np.float32(0.01))                             # 7 all positive
    out.append(np.full(n, -0.3, dtype=np.float32))                                  # 8 constant negative
    out.append(normal(1e-7))                                                        # 9 tiny (subnormal fp16 scales)
    # 10 rounding ties: each block holds ±127 and values k + 0.5, so Q8_0's d is 1 and x / d
    # lands exactly on halves (roundf rounds away from zero, round-half-even would not)
    ties = (rng.integers(-127, 127, n) + 0.5).astype(np.float32)
    ties[::32] = np.float32(127) * np.sign(rng.standard_normal(n // 32)).astype(np.float32)
    out.append(ties)
    out.append(normal(30.0))                                                        # 11 large
    out.append(real_row(models))                                                    # 12 real weights
    return np.stack(out).astype(np.float32)


def importance(rng, count):
    # skewed per-column weights, as an imatrix gives them (log-normal); row 3's has zeros
    weights = np.exp(rng.standard_normal((count, WIDTH)) * 1.5).astype(np.float32)
    weights[3, rng.choice(WIDTH, 40, replace=False)] = 0
    return weights


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=os.path.expanduser("~/.cache/strata/models"))
    arguments = parser.parse_args()
    print(f"gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}", file=sys.stderr)
    rng = np.random.default_rng(20261207)
    values = rows(rng, arguments.models)
    weights = importance(rng, values.shape[0])
    os.makedirs(os.path.join(OUT, "gguf"), exist_ok=True)
    values.astype("<f4").tofile(os.path.join(OUT, "rows.f32"))
    weights.astype("<f4").tofile(os.path.join(OUT, "importance.f32"))
    for qtype in GGUF_FORMATS:
        blocks = gguf.quants.quantize(values, qtype).astype(np.uint8)
        blocks.tofile(os.path.join(OUT, "gguf", qtype.name + ".bin"))
        print(f"{qtype.name}: {values.shape[0]} rows, {blocks.size} bytes")


if __name__ == "__main__":
    main()
