#!/usr/bin/env python3
"""Writes the dequantization fixtures of the CPU kernels' tests.

For every weight format hearth's CPU backend reads (F32, F16, BF16, Q8_0,
Q4_0, Q5_0, Q4_K, Q6_K, Q4_1) it makes random but valid blocks, dequantizes them
with the `gguf` Python package (the independent reference), and writes

    tests/data/dequant/<fmt>.bin   the raw blocks (GGUF byte layout)
    tests/data/dequant/<fmt>.f32   the expected floats, little-endian float32

backends/cpu/tests/kernels_test.cc compares DequantizeRowRef and
DequantizeRow against them bit for bit.

Blocks: where gguf can quantize the type (Q8_0, Q4_0, Q5_0, Q4_1) half the
blocks come from quantizing random floats of varied magnitude; the rest (and
all Q4_K/Q6_K blocks) are random bytes with random finite f16 scales (and
minimums), which covers every nibble, high bit, scale code, subnormal and
negative scale.
F16 values are random finite halves (with infinities, without NaNs: F16C
quiets signalling NaNs), BF16 values are any 16 bits.

Rerun (deterministic, seeded; needs numpy and gguf from PyPI, fixtures were
made with gguf 0.19.0), from the repository root:

    python3 scripts/make_dequant_fixtures.py
"""

import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "dequant")

# Blocks per fixture: total size stays near 120 KB.
N_ELEMS_FLOAT = 1024
N_BLOCKS_32 = 96
N_BLOCKS_256 = 24


def random_finite_halves(rng, n, allow_inf=False):
    """n random f16 bit patterns, never NaN (and never inf unless allowed)."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    exp_all_ones = (bits & 0x7C00) == 0x7C00
    is_nan = exp_all_ones & ((bits & 0x03FF) != 0)
    bad = is_nan if allow_inf else exp_all_ones
    # Clear the top exponent bit of bad patterns: finite, same sign/mantissa.
    bits[bad] &= np.uint16(0xBFFF)
    return bits


def random_blocks(rng, qtype, n_blocks):
    """Random bytes with every f16 scale field replaced by a finite half."""
    _, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint32).astype(np.uint8)
    half_offsets = {
        QT.Q8_0: [0],
        QT.Q4_0: [0],
        QT.Q5_0: [0],
        QT.Q4_1: [0, 2],   # d, m
        QT.Q4_K: [0, 2],   # d, dmin
        QT.Q6_K: [208],    # d
    }[qtype]
    for off in half_offsets:
        blocks[:, off:off + 2] = random_finite_halves(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return blocks


def quantized_blocks(rng, qtype, n_blocks):
    """gguf-quantized random floats, one random magnitude per block."""
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    scale = np.exp(rng.uniform(-8, 4, size=(n_blocks, 1))).astype(np.float32)
    x = (rng.standard_normal((n_blocks, block_size)).astype(np.float32) * scale)
    q = quantize(x, qtype)
    return np.asarray(q, dtype=np.uint8).reshape(n_blocks, type_size)


def make(rng, qtype):
    if qtype == QT.F32:
        data = (rng.standard_normal(N_ELEMS_FLOAT) * 10).astype(np.float32).view(np.uint8)
    elif qtype == QT.F16:
        data = random_finite_halves(rng, N_ELEMS_FLOAT, allow_inf=True).view(np.uint8)
    elif qtype == QT.BF16:
        data = rng.integers(0, 1 << 16, size=N_ELEMS_FLOAT, dtype=np.uint32).astype(np.uint16).view(np.uint8)
    elif qtype in (QT.Q8_0, QT.Q4_0, QT.Q5_0, QT.Q4_1):
        half = N_BLOCKS_32 // 2
        data = np.concatenate([quantized_blocks(rng, qtype, half),
                               random_blocks(rng, qtype, N_BLOCKS_32 - half)]).reshape(-1)
    else:
        data = random_blocks(rng, qtype, N_BLOCKS_256).reshape(-1)
    data = np.ascontiguousarray(data, dtype=np.uint8)
    expected = np.asarray(dequantize(data, qtype), dtype=np.float32).reshape(-1)
    return data, expected


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    # Append new formats at the end: the seed is the position, so the files of
    # the formats before stay byte-identical.
    formats = [QT.F32, QT.F16, QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q5_0, QT.Q4_K, QT.Q6_K, QT.Q4_1]
    total = 0
    for i, qtype in enumerate(formats):
        rng = np.random.default_rng(20240 + i)
        data, expected = make(rng, qtype)
        name = qtype.name.lower()
        with open(os.path.join(OUT_DIR, name + ".bin"), "wb") as f:
            f.write(data.tobytes())
        with open(os.path.join(OUT_DIR, name + ".f32"), "wb") as f:
            f.write(expected.astype("<f4").tobytes())
        total += data.nbytes + expected.nbytes
        print(f"{name}: {data.nbytes} bytes of blocks, {expected.size} floats")
    print(f"total {total} bytes in {os.path.normpath(OUT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
