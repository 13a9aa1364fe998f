#!/usr/bin/env python3
"""finetune_notes.py — fine-tune SmolLM2-135M-Instruct on synthetic ward notes.

    scripts/fetch-model.sh smollm2          # once: models/smollm2-135m-instruct-q4_1.gguf
    python3 examples/python/finetune_notes.py

Generates a synthetic clinical-notes dataset with scripts/make_clinical_notes.py
(invented notes, no patient data), asks the base model one held-out note
(greedy), trains a LoRA adapter with hearth.finetune, prints the loss on held-out
examples before and after, and asks the same note again with the adapter: all
in one process, nothing saved or reloaded. Options below size the run; the
defaults finish in a few minutes on a 2-core laptop CPU (examples/python/README.md).

Needs the `hearth` package: `pip install .` from the repository root, or a
CMake build with -DHEARTH_PYTHON=ON and PYTHONPATH=<build>/python.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import hearth

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model",
                    default=os.path.join(ROOT, "models", "smollm2-135m-instruct-q4_1.gguf"))
    ap.add_argument("--train", help="training JSONL (default: generated)")
    ap.add_argument("--heldout", help="held-out JSONL (default: generated)")
    ap.add_argument("--n-train", type=int, default=120, help="examples to generate for training")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="default: all cores")
    args = ap.parse_args()

    if not os.path.isfile(args.model):
        print(f"{args.model}: not found; run scripts/fetch-model.sh smollm2 first", file=sys.stderr)
        return 1
    if (args.train is None) != (args.heldout is None):
        ap.error("give both --train and --heldout, or neither")
    tmp = None
    if args.train is None:
        tmp = tempfile.TemporaryDirectory(prefix="hearth-notes-")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_clinical_notes.py"),
                        "--out-dir", tmp.name, "--train", str(args.n_train), "--heldout", "10",
                        "--seed", str(args.seed)], check=True)
        args.train = os.path.join(tmp.name, "train.jsonl")
        args.heldout = os.path.join(tmp.name, "heldout.jsonl")

    model = hearth.Model(args.model, threads=args.threads)
    with open(args.heldout, encoding="utf-8") as f:
        question = json.loads(f.readline())["messages"]
    expected = question[-1]["content"]
    prompt = question[:-1]  # system + user: the assistant's turn is what we ask for
    print("held-out question:", prompt[-1]["content"])
    print("expected answer:\n" + expected)

    def ask() -> str:
        return model.generate(prompt, max_tokens=48, temperature=0)

    print("\n--- before training ---\n" + ask().strip())

    # A tenth of the training file is held out by the trainer (never trained
    # on): its loss is measured before the first step and after the last.
    t0 = time.monotonic()
    trainer = model.trainer(args.train, rank=args.rank, alpha=2 * args.rank, lr=args.lr,
                            epochs=args.epochs, eval_split=0.1, schedule="cosine", warmup=5,
                            seed=args.seed, ctx=256)
    before = trainer.evaluate()
    print(f"\ntraining: {trainer.n_train} examples, {trainer.n_eval} held out, "
          f"{trainer.total_steps} steps, rank {args.rank}")
    print(f"held-out loss before: {before:.4f}")
    for s in trainer:
        if s.step == 1 or s.step % 10 == 0 or s.step == s.total:
            print(f"step {s.step}/{s.total} loss {s.loss:.4f} lr {s.lr:.2e} "
                  f"{s.tokens_per_s:.0f} tok/s  [{time.monotonic() - t0:.0f}s]", flush=True)
    after = trainer.evaluate()
    print(f"held-out loss after:  {after:.4f}  (training took {time.monotonic() - t0:.0f}s)")

    adapter = trainer.adapter()  # bound to the model: attach it at once
    print("\n--- after training ---\n" + model.generate(prompt, max_tokens=48, temperature=0,
                                                      adapters=[adapter]).strip())
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
