#!/usr/bin/env python3
"""Writes a 1B-parameter, Llama-shaped random-weight model for `hearth bench`.

Owns the benchmark model files models/bench-1b-<type>.gguf (models/ is git-ignored):
hidden 2048, 16 layers, 32 heads, 8 KV heads, FFN 8192, vocab 32000 with the Llama SPM
tokenizer metadata copied from /work/shared/data/tokenizers/ggml-vocab-llama-spm.gguf.
Weights are N(0, 0.02), norms 1. Each tensor is drawn from its own seeded generator, so
every file type holds the same underlying weights and the files are reproducible.
Tensors are generated, quantized and written one at a time (in row chunks), so memory
stays around a few hundred MB whatever the model size.

The weight type of each tensor follows llama.cpp's mixes: q8_0 = all Q8_0; q4_0 = Q4_0
with output.weight Q6_K; q4_k_m = Q4_K with output.weight and the use_more_bits layers'
attn_v/ffn_down in Q6_K. --pure makes every 2D tensor the named type.

Usage: python3 scripts/make_bench_model.py [--types f16,q8_0,q4_0,q4_k_m] [--out models]
(f16 is every 2D tensor in F16, norms F32; the default writes the three quantized files)
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "fixtures"))

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402

import gguf_model as gm  # noqa: E402
import quantize as qz  # noqa: E402

VOCAB_FILE = "/work/shared/data/tokenizers/ggml-vocab-llama-spm.gguf"
CHUNK_ROWS = 1024  # rows generated and quantized at a time (2048-8192 floats each)
SEED = 20240601


def bench_hparams(n_vocab):
    return gm.HParams(arch="llama", n_vocab=n_vocab, n_embd=2048, n_layer=16, n_head=32,
                      n_head_kv=8, n_ff=8192, rope_theta=10000.0,
                      rms_eps=float(np.float32(1e-5)), n_ctx=4096, tied=False,
                      qkv_bias=False)


class CopiedTokenizer:
    """The tokenizer.* metadata of an existing GGUF file, written unchanged."""

    def __init__(self, path):
        reader = gguf.GGUFReader(path)
        self.fields = []
        for key, field in reader.fields.items():
            if not key.startswith("tokenizer."):
                continue
            vtype = field.types[0]
            sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
            self.fields.append((key, field.contents(), vtype, sub))
        self.n_vocab = len(reader.fields[gguf.Keys.Tokenizer.LIST].data)

    def write_gguf_metadata(self, writer):
        for key, value, vtype, sub in self.fields:
            writer.add_key_value(key, value, vtype, sub)


def tensor_shapes(hp):
    """[(gguf name, numpy shape)] in file order."""
    shapes = {"token_embd.weight": (hp.n_vocab, hp.n_embd),
              "output_norm.weight": (hp.n_embd,), "output.weight": (hp.n_vocab, hp.n_embd)}
    q, kv = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
    for i in range(hp.n_layer):
        p = "blk.%d." % i
        shapes.update({
            p + "attn_norm.weight": (hp.n_embd,), p + "attn_q.weight": (q, hp.n_embd),
            p + "attn_k.weight": (kv, hp.n_embd), p + "attn_v.weight": (kv, hp.n_embd),
            p + "attn_output.weight": (hp.n_embd, q), p + "ffn_norm.weight": (hp.n_embd,),
            p + "ffn_gate.weight": (hp.n_ff, hp.n_embd), p + "ffn_up.weight": (hp.n_ff, hp.n_embd),
            p + "ffn_down.weight": (hp.n_embd, hp.n_ff),
        })
    return [(name, shapes[name]) for name, _ in gm.tensor_names(hp)]


def row_bytes(qt, n_cols):
    block, size = gguf.GGML_QUANT_SIZES[qt]
    return n_cols // block * size


def make_tensor(index, name, shape, qt):
    """Generated and quantized in row chunks; returns the bytes/array for the writer."""
    rng = np.random.default_rng([SEED, index])
    if len(shape) == 1:
        return np.ones(shape, dtype=np.float32)  # norms
    rows, cols = shape
    parts = []
    for r0 in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - r0)
        x = rng.standard_normal((n, cols), dtype=np.float32)
        x *= np.float32(0.02)
        # Benchmark weights need the right layout, not the last bit of accuracy: skip the
        # Q4_K scale search (several times slower).
        parts.append(qz.quantize(x, qt, search=False))
    return np.concatenate(parts, axis=0)


def write_model(path, hp, tokenizer, scheme, pure):
    t0 = time.time()
    wscheme = "q4_0_pure" if pure and scheme == "q4_0" else scheme
    writer = gguf.GGUFWriter(path, hp.arch)
    gm.write_header(writer, hp, tokenizer, "hearth-bench-1b-" + scheme, scheme)
    shapes = tensor_shapes(hp)
    types = [gm.weight_type(hp, name, wscheme) for name, _ in shapes]
    for (name, shape), qt in zip(shapes, types):
        if qt == QT.F32:
            writer.add_tensor_info(name, shape, np.dtype(np.float32), 4 * int(np.prod(shape)))
        else:
            byte_shape = (shape[0], row_bytes(qt, shape[1]))
            writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8),
                                   byte_shape[0] * byte_shape[1], raw_dtype=qt)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    n_params = 0
    for i, ((name, shape), qt) in enumerate(zip(shapes, types)):
        writer.write_tensor_data(make_tensor(i, name, shape, qt))
        n_params += int(np.prod(shape))
    writer.close()
    counts = {}
    for qt in types:
        counts[qt.name] = counts.get(qt.name, 0) + 1
    print("%s: %.2fB parameters, %.2f GiB, tensors %s, %.0f s" % (
        path, n_params / 1e9, os.path.getsize(path) / 2**30, counts, time.time() - t0),
        flush=True)


def main():
    ap = argparse.ArgumentParser(description="Write the 1B random-weight benchmark models.")
    ap.add_argument("--types", default="q8_0,q4_0,q4_k_m")
    ap.add_argument("--out", default=os.path.normpath(os.path.join(HERE, "..", "models")))
    ap.add_argument("--vocab", default=VOCAB_FILE)
    ap.add_argument("--pure", action="store_true", help="no llama.cpp type mix")
    args = ap.parse_args()
    tokenizer = CopiedTokenizer(args.vocab)
    hp = bench_hparams(tokenizer.n_vocab)
    os.makedirs(args.out, exist_ok=True)
    for scheme in args.types.split(","):
        if scheme not in ("f16", "q8_0", "q4_0", "q4_k_m"):
            raise SystemExit("unknown type %r (f16, q8_0, q4_0, q4_k_m)" % scheme)
        if args.pure and scheme == "q4_k_m":
            raise SystemExit("--pure applies to q8_0 and q4_0 only")
        suffix = "-pure" if args.pure else ""
        write_model(os.path.join(args.out, "bench-1b-%s%s.gguf" % (scheme, suffix)), hp,
                    tokenizer, scheme, args.pure)


if __name__ == "__main__":
    main()
