#!/usr/bin/env bash
# The main job: set up, build, fetch the default model and generate text on
# the CPU. Arguments replace the default generate flags.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
HEARTH_BUILD_DIR=$root/build "$root/scripts/build.sh"
model=$("$root/scripts/fetch-model.sh")
if (($# == 0)); then
  set -- -p "The capital of France is" -n 64 --temp 0
fi
exec "$root/build/bin/hearth" generate -m "$model" "$@"
