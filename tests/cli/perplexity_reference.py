#!/usr/bin/env python3
"""Reference perplexity for `hearth perplexity` on the tiny f32 qwen2 model.

Owns the figure the cli_perplexity_tiny test expects (tests/cli/CMakeLists.txt,
TINY_PPL). The forward pass is the numpy one of scripts/fixtures/reference.py (written
from the architecture, independent of hearth's C++); the windowing is llama.cpp's
perplexity convention as docs/cli.md states it: windows of n_ctx tokens, BOS first in
each when the model adds one, the logits at positions n_ctx/2 .. n_ctx-2 score the next
token. Token ids come from `hearth tokenize` so the check is on the forward pass and the
windowing, not the tokenizer (which has its own tests).

Usage: python3 tests/cli/perplexity_reference.py --hearth build/bin/hearth TEXT_FILE
           [--model tests/data/models/tiny-qwen2-f32.gguf] [--ctx 64] [--chunks 3]
The ctest writes TEXT_FILE (build/tests/cli/cli_perplexity_text.txt) before it runs.
"""

import argparse
import math
import os
import subprocess
import sys

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts", "fixtures"))
import gguf_model  # noqa: E402
import reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("text_file")
    ap.add_argument("--hearth", default=os.path.join(REPO, "build", "bin", "hearth"))
    ap.add_argument("--model",
                    default=os.path.join(REPO, "tests", "data", "models", "tiny-qwen2-f32.gguf"))
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--chunks", type=int, default=3)
    args = ap.parse_args()

    out = subprocess.run([args.hearth, "tokenize", "-m", args.model, "--add-special", "-f",
                          args.text_file], check=True, capture_output=True, text=True).stdout
    tokens = [int(t) for t in out.split()]
    hp, weights, _, reader = gguf_model.read_gguf(args.model)
    bos_field = reader.fields.get("tokenizer.ggml.bos_token_id")
    add_bos_field = reader.fields.get("tokenizer.ggml.add_bos_token")
    add_bos = bool(add_bos_field.contents()) if add_bos_field is not None else False
    n_ctx = args.ctx
    n_windows = min(len(tokens) // n_ctx, args.chunks)
    if len(tokens) < 2 * n_ctx:
        sys.exit("%s: %d tokens, need %d" % (args.text_file, len(tokens), 2 * n_ctx))
    first = n_ctx // 2
    nll = []
    for w in range(n_windows):
        window = tokens[w * n_ctx:(w + 1) * n_ctx]
        if add_bos:
            window[0] = int(bos_field.contents())
        logits = reference.np_forward(hp, weights, window)  # float64
        for j in range(first, n_ctx - 1):
            row = logits[j]
            top = row.max()
            nll.append(-(row[window[j + 1]] - top - math.log(np.exp(row - top).sum())))
    a = np.array(nll)
    ppl = math.exp(a.mean())
    se = ppl * math.sqrt((np.mean(a * a) - a.mean() ** 2) / (len(a) - 1))
    print("perplexity: %.4f +/- %.4f over %d windows of %d tokens (%d scored tokens)"
          % (ppl, se, n_windows, n_ctx, len(a)))


if __name__ == "__main__":
    main()
