#!/usr/bin/env python3
"""generate.py — stream a completion (or one chat reply) from a GGUF model.

    python3 examples/python/generate.py MODEL.gguf "The capital of France is"
    python3 examples/python/generate.py MODEL.gguf "Write a haiku about rain" --chat --seed 1
    python3 examples/python/generate.py --list-devices

Needs the `hearth` package: `pip install .` from the repository root, or a
CMake build with -DHEARTH_PYTHON=ON and PYTHONPATH=<build>/python.
"""

from __future__ import annotations

import argparse
import sys

import hearth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="a .gguf file")
    ap.add_argument("prompt", nargs="?", default="Once upon a time")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--stop", action="append", default=[], help="a stop string (repeatable)")
    ap.add_argument("--threads", type=int, default=None, help="default: all cores")
    ap.add_argument("--device", default=None, help="default: the best device")
    ap.add_argument("--chat", action="store_true",
                    help="wrap the prompt as a user turn in the model's chat format")
    ap.add_argument("--list-devices", action="store_true")
    args = ap.parse_args()

    if args.list_devices:
        for d in hearth.devices():
            print(f"{d.name:10} {d.vendor:10} {d.description} "
                  f"({d.memory_free / 2**30:.1f} of {d.memory_total / 2**30:.1f} GiB free)")
        return 0
    if args.model is None:
        ap.error("a model file is needed (or --list-devices)")

    try:
        model = hearth.Model(args.model, device=args.device, threads=args.threads)
        print(f"{model.info.architecture}, {model.info.n_params / 1e6:.0f}M params, "
              f"{model.info.quantization}, on {model.info.device}", file=sys.stderr)
        if args.chat:
            # A conversation as the prompt: rendered in the model's chat
            # format; what the user wrote never becomes control tokens.
            prompt = [{"role": "user", "content": args.prompt}]
        else:
            prompt = args.prompt
            print(prompt, end="", flush=True)
        with model.session() as session:
            for piece in session.stream(prompt, max_tokens=args.max_tokens,
                                        temperature=args.temperature, top_p=args.top_p,
                                        seed=args.seed, stop=args.stop):
                print(piece, end="", flush=True)
            print()
            r = session.last_result
    except hearth.Error as e:
        print(f"error ({e.code.name}): {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n(interrupted)", file=sys.stderr)
        return 130
    if r is None:
        return 0
    print(f"[{r.n_prompt_tokens} prompt tokens in {r.prompt_seconds:.2f} s, "
          f"{r.n_generated_tokens} generated at {r.tokens_per_second:.1f} tokens/s, "
          f"stopped: {r.stop_reason.name.lower()}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
