#!/usr/bin/env python3
"""Copies IN to OUT with the one occurrence of OLD (hex) replaced by NEW (hex).

A hostile file made from a valid fixture: e.g. a model whose general.name
holds terminal escape sequences. OLD must occur exactly once and NEW be as
long, so every offset in the file stays right.
"""
import sys


def main() -> int:
    src, dst, old_hex, new_hex = sys.argv[1:5]
    old, new = bytes.fromhex(old_hex), bytes.fromhex(new_hex)
    if len(old) != len(new):
        print(f"patch_bytes: OLD is {len(old)} bytes, NEW {len(new)}", file=sys.stderr)
        return 1
    data = open(src, "rb").read()
    if data.count(old) != 1:
        print(f"patch_bytes: {old!r} occurs {data.count(old)} times in {src}", file=sys.stderr)
        return 1
    with open(dst, "wb") as f:
        f.write(data.replace(old, new))
    return 0


if __name__ == "__main__":
    sys.exit(main())
