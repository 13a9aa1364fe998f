#!/usr/bin/env python3
"""engine_chat.py — answer several chat questions at once with hearth.Engine.

    python3 examples/python/engine_chat.py MODEL.gguf
    python3 examples/python/engine_chat.py MODEL.gguf "What is a haiku?" "Name three rivers."
    python3 examples/python/engine_chat.py MODEL.gguf --lora notes=lora/notes --lora-scale 0.8

Every question is a request to one engine: they are computed together in one
batch (continuous batching), and asyncio reads all of them at once, printing
each answer's pieces as they arrive, tagged with the question's number. With
--lora, odd-numbered questions use the adapter and even-numbered ones the
base model, in the same batch.

Needs the `hearth` package: `pip install .` from the repository root, or a
CMake build with -DHEARTH_PYTHON=ON and PYTHONPATH=<build>/python.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import hearth

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about rain.",
    "Explain what a KV cache is in one sentence.",
    "Give me three names for a cat.",
]


async def answer(engine: hearth.Engine, i: int, question: str, args: argparse.Namespace,
                 use_lora: bool) -> hearth.RequestResult:
    req = engine.submit(messages=[{"role": "user", "content": question}],
                        max_tokens=args.max_tokens, temperature=args.temperature,
                        seed=args.seed + i, adapters={0: args.lora_scale} if use_lora else None)
    async for ev in req:  # the event loop keeps serving the other answers meanwhile
        if ev.text:
            print(f"[{i}] {ev.text!r}", flush=True)
    assert req.result is not None
    return req.result


async def run(engine: hearth.Engine, args: argparse.Namespace) -> None:
    questions = args.questions or QUESTIONS
    t0 = time.monotonic()
    results = await asyncio.gather(*(
        answer(engine, i, q, args, args.lora is not None and i % 2 == 1)
        for i, q in enumerate(questions)))
    seconds = time.monotonic() - t0
    print()
    for i, (q, r) in enumerate(zip(questions, results)):
        print(f"[{i}] {q}\n    {r.text.strip()}\n    ({r.n_generated_tokens} tokens, "
              f"{r.finish_reason.name.lower()}, first token after "
              f"{r.first_token_seconds:.2f} s)")
    s = engine.stats()
    print(f"\n{len(results)} requests, {s.generated_tokens} tokens in {seconds:.2f} s "
          f"({s.generated_tokens / max(seconds, 1e-9):.1f} tokens/s together), "
          f"{s.steps} engine steps", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a .gguf file with a chat format")
    ap.add_argument("questions", nargs="*", help="default: four built-in questions")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=0.7, help="0 = greedy")
    ap.add_argument("--seed", type=int, default=1, help="question i uses seed + i")
    ap.add_argument("--n-seq", type=int, default=4, help="requests computed together")
    ap.add_argument("--threads", type=int, default=None, help="default: all cores")
    ap.add_argument("--lora", default=None, metavar="NAME=PATH",
                    help="a LoRA adapter (PEFT directory or GGUF) for odd-numbered questions")
    ap.add_argument("--lora-scale", type=float, default=1.0)
    args = ap.parse_args()

    try:
        model = hearth.Model(args.model, threads=args.threads)
        adapters = []
        if args.lora is not None:
            adapters.append(model.load_adapter(args.lora.split("=", 1)[-1]))
        with hearth.Engine(model, n_seq=args.n_seq, adapters=adapters) as engine:
            asyncio.run(run(engine, args))
    except hearth.Error as e:
        print(f"error ({e.code.name}): {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n(interrupted)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
