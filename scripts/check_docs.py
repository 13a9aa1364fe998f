#!/usr/bin/env python3
"""Runs the commands of a documentation page, so the page cannot go stale.

    scripts/check_docs.py [--build DIR] [--real-models] [--keep] PAGE.md...

Every fenced block right after a line `<!-- docs-check -->` (a shell block,
run with bash -euo pipefail) or `<!-- docs-check python -->` (run with
python3, PYTHONPATH=<build>/python) is executed, in the order of the page,
in one scratch folder that looks like a checkout: `build` and `scripts` link
to the real ones, `tests` to the test data, and the files a newcomer would
have downloaded or brought are stand-ins unless --real-models is given:

    models/smollm2-135m-instruct-q4_1.gguf  tests/data/models/tiny-qwen2-f32.gguf
                                            (a tiny random Qwen2 with a ChatML
                                            template: the commands run, the text
                                            is noise)
    my-hf-model/                            tests/data/convert/qwen2 (a tiny
                                            Hugging Face directory)

With --real-models the downloaded model is used (scripts/fetch-model.sh
smollm2) and each block's output is printed, to be read. Exits non-zero at
the first block that fails, printing it and its output.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
STAND_INS = {
    "models/smollm2-135m-instruct-q4_1.gguf": "tests/data/models/tiny-qwen2-f32.gguf",
    "my-hf-model": "tests/data/convert/qwen2",
}
MARK = re.compile(r"^<!--\s*docs-check(?:\s+(python))?\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(path):
    """(line number, kind, code) of every marked block of the page."""
    lines = open(path, encoding="utf-8").read().splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if not m:
            i += 1
            continue
        kind = m.group(1) or "sh"
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not FENCE.match(lines[j]):
            raise SystemExit(f"{path}:{i + 1}: a docs-check mark must be followed by a code block")
        k = j + 1
        while k < len(lines) and not lines[k].startswith("```"):
            k += 1
        if k >= len(lines):
            raise SystemExit(f"{path}:{j + 1}: the code block is not closed")
        out.append((j + 1, kind, "\n".join(lines[j + 1:k]) + "\n"))
        i = k + 1
    return out


def scratch(build, real_models):
    d = tempfile.mkdtemp(prefix="hearth-docs-")
    os.symlink(build, os.path.join(d, "build"))
    os.symlink(os.path.join(ROOT, "scripts"), os.path.join(d, "scripts"))
    os.symlink(os.path.join(ROOT, "tests"), os.path.join(d, "tests"))
    os.makedirs(os.path.join(d, "models"))
    for name, stand_in in STAND_INS.items():
        real = os.path.join(ROOT, name)
        src = real if real_models else os.path.join(ROOT, stand_in)
        if real_models and name.startswith("models/") and not os.path.exists(real):
            raise SystemExit(f"--real-models: {real} is missing (scripts/fetch-model.sh smollm2)")
        if not os.path.exists(src):
            continue  # e.g. my-hf-model with --real-models: keep the stand-in below
        os.symlink(src, os.path.join(d, name))
    if real_models and not os.path.exists(os.path.join(d, "my-hf-model")):
        os.symlink(os.path.join(ROOT, STAND_INS["my-hf-model"]), os.path.join(d, "my-hf-model"))
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--real-models", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per block")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if not os.path.isfile(os.path.join(build, "bin", "hearth")):
        raise SystemExit(f"{build}/bin/hearth is missing: build first")
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "python"), PYTHONUNBUFFERED="1")
    env.pop("HEARTH_PLUGIN_PATH", None)
    failed = 0
    for page in args.pages:
        found = blocks(page)
        if not found:
            raise SystemExit(f"{page}: no docs-check blocks")
        d = scratch(build, args.real_models)
        try:
            for line, kind, code in found:
                cmd = (["bash", "-euo", "pipefail", "-c", code] if kind == "sh"
                       else [sys.executable, "-c", code])
                try:
                    r = subprocess.run(cmd, cwd=d, env=env, stdin=subprocess.DEVNULL,
                                       capture_output=True, text=True, errors="replace",
                                       timeout=args.timeout)
                    rc, output = r.returncode, r.stdout + r.stderr
                except subprocess.TimeoutExpired as e:
                    rc, output = "timeout", f"(no end after {args.timeout} s) {e}"
                where = f"{os.path.relpath(page, ROOT)}:{line}"
                if rc != 0:
                    print(f"FAIL {where} ({kind}, exit {rc}):\n{code}--- output ---\n{output}",
                          file=sys.stderr)
                    failed += 1
                    break
                print(f"ok   {where} ({kind}, {len(code.splitlines())} lines)")
                if args.real_models:
                    print(output)
        finally:
            if args.keep:
                print(f"scratch folder kept: {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
