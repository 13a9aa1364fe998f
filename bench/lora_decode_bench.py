#!/usr/bin/env python3
"""Decode speed with and without a LoRA adapter, measured as a ratio in one process.

Two sessions on one model: one bare, one with the adapter(s) attached. They decode the
same random tokens in alternating rounds (bare, adapted, bare, ...), so drift in the
machine's speed (a shared VM's neighbours, thermal state) hits both alike; the figure
is the median over rounds of (adapted tok/s) / (bare tok/s). docs/perf.md records it.

Usage: PYTHONPATH=build/python python3 bench/lora_decode_bench.py -m MODEL --lora ADAPTER
           [--lora ADAPTER ...] [-n 32] [--rounds 9] [--threads 2]
"""

import argparse
import random
import statistics
import time

import hearth


def decode(session, tokens):
    session.reset()
    session.feed(tokens[:1])
    t0 = time.perf_counter()
    for t in tokens[1:]:
        session.feed([t])
    return (len(tokens) - 1) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--lora", action="append", required=True, help="PATH[:SCALE]")
    ap.add_argument("-n", type=int, default=32, help="tokens decoded per round")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    model = hearth.Model(args.model, threads=args.threads)
    adapters = []
    for spec in args.lora:
        path, _, tail = spec.rpartition(":")
        try:
            scale = float(tail)
        except ValueError:
            path, scale = spec, 1.0
        adapters.append((model.load_adapter(path), scale))
    rng = random.Random(1234)
    tokens = [rng.randrange(model.n_vocab) for _ in range(args.n + 1)]
    with model.session(ctx=args.n + 8) as bare, \
            model.session(ctx=args.n + 8, adapters=adapters) as adapted:
        decode(bare, tokens)  # warm-up: pages mapped, plans built
        decode(adapted, tokens)
        base, lora, ratios = [], [], []
        for _ in range(args.rounds):
            b = decode(bare, tokens)
            a = decode(adapted, tokens)
            base.append(b)
            lora.append(a)
            ratios.append(a / b)
    extra = sum(t.rank * (t.n_in + t.n_out) for a, _ in adapters for t in a.targets)
    print("model %s, adapters %s (%d LoRA parameters)" % (args.model, args.lora, extra))
    print("bare    tok/s median %.2f  (min %.2f, max %.2f)" % (
        statistics.median(base), min(base), max(base)))
    print("adapted tok/s median %.2f  (min %.2f, max %.2f)" % (
        statistics.median(lora), min(lora), max(lora)))
    print("ratio adapted/bare: median %.3f  (min %.3f, max %.3f) over %d rounds of %d tokens" % (
        statistics.median(ratios), min(ratios), max(ratios), args.rounds, args.n))


if __name__ == "__main__":
    main()
