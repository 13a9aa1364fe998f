#!/usr/bin/env python3
"""Writes the LoRA adapter `hearth bench --lora` measures against the 1B bench model.

Owns models/bench-1b-lora-r16.gguf (git-ignored): a GGUF LoRA as llama.cpp's converter
writes it (general.type = adapter, adapter.type = lora, adapter.lora.alpha), rank 16,
alpha 32, on q, k, v, o, gate, up and down of every layer of the model
scripts/make_bench_model.py builds, F16 (what a PEFT adapter trained in half precision
holds). A ~ N(0, 0.02), B ~ N(0, 0.002): random, seeded, reproducible.

Usage: python3 scripts/make_bench_lora.py [--rank 16] [--out models]
"""

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gguf  # noqa: E402

from make_bench_model import bench_hparams  # noqa: E402

SEED = 20261122


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "models"))
    args = ap.parse_args()
    hp = bench_hparams(32000)
    r = args.rank
    q, kv = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
    dims = {"attn_q": (hp.n_embd, q), "attn_k": (hp.n_embd, kv), "attn_v": (hp.n_embd, kv),
            "attn_output": (q, hp.n_embd), "ffn_gate": (hp.n_embd, hp.n_ff),
            "ffn_up": (hp.n_embd, hp.n_ff), "ffn_down": (hp.n_ff, hp.n_embd)}
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "bench-1b-lora-r%d.gguf" % r)
    w = gguf.GGUFWriter(path, "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", 2.0 * r)
    w.add_name("hearth bench LoRA r%d" % r)
    rng = np.random.default_rng(SEED)
    for layer in range(hp.n_layer):
        for name, (n_in, n_out) in dims.items():
            a = (0.02 * rng.standard_normal((r, n_in))).astype(np.float16)
            b = (0.002 * rng.standard_normal((n_out, r))).astype(np.float16)
            w.add_tensor("blk.%d.%s.weight.lora_a" % (layer, name), a)
            w.add_tensor("blk.%d.%s.weight.lora_b" % (layer, name), b)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("%s: %d bytes" % (path, os.path.getsize(path)))


if __name__ == "__main__":
    main()
