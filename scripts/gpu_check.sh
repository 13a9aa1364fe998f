#!/usr/bin/env bash
# The device check of the GPU plugins, as ONE run on a machine with a GPU
# (docs/gpu.md): builds with every core, runs the conformance suite on the
# GPU plugin, checks that greedy generation on the GPU gives the CPU's
# tokens for the tiny fixture models (several weight formats, two
# architectures, a LoRA adapter) and that replayed graph captures give the
# tokens of node-by-node launches, then times decode on the bench model on
# the GPU (with and without graph capture) and the CPU. Everything it prints goes to $OUT/gpu_check.log too (when
# OUT is set, as on the device machine).
#
#   scripts/gpu_check.sh [cuda|rocm]     (default cuda)
#
# Exit status: 0 when conformance and every comparison passed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-cuda}
log=${OUT:-/tmp}/gpu_check.log
exec > >(tee "$log") 2>&1
build=${HEARTH_BUILD_DIR:-$root/build-gpu}
hearth=$build/bin/hearth
plugin=$build/lib/hearth/plugins/libhearth-backend-$kind.so
failed=0

echo "== machine"
nvidia-smi -L 2>/dev/null || true
lscpu | grep -E '^Model name|^CPU\(s\)' || true

echo "== build ($build, $(nproc) jobs)"
HEARTH_BUILD_DIR=$build "$root/scripts/build.sh" -DHEARTH_TESTS=OFF \
  "-DHEARTH_${kind^^}=ON" || exit 1
"$hearth" info | sed -n '1,/^devices/p'

echo "== conformance ($plugin)"
"$build/bin/hearth-conformance" --plugin "$plugin" || failed=1

echo "== greedy generation: $kind:0 against cpu"
models=$root/tests/data/models
while IFS='|' read -r name args; do
  # shellcheck disable=SC2086
  want=$("$hearth" generate -m $args -p "The cat" -n 16 --temp 0 --quiet --device cpu)
  # shellcheck disable=SC2086
  got=$("$hearth" generate -m $args -p "The cat" -n 16 --temp 0 --quiet --device "$kind:0")
  if [[ -n $want && $want == "$got" ]]; then
    echo "same tokens: $name"
  else
    echo "DIFFERENT: $name"$'\n'"  cpu: $want"$'\n'"  $kind: $got"
    failed=1
  fi
done <<EOF
f32|$models/tiny-llama-f32.gguf
f16|$models/tiny-llama256-f16.gguf
q8_0|$models/tiny-llama256-q8_0.gguf
q4_0|$models/tiny-llama256-q4_0.gguf
q4_k_m|$models/tiny-llama256-q4_k_m.gguf
qwen2|$models/tiny-qwen2-f32.gguf
gemma3|$models/tiny-gemma3-f32.gguf
lora|$models/tiny-llama-f32.gguf --lora $root/tests/data/lora/llama-all:0.5
EOF

echo "== graph capture: replayed decode steps against node-by-node ones"
args="$models/tiny-llama256-q4_k_m.gguf -p The -n 32 --temp 0 --quiet --device $kind:0"
# shellcheck disable=SC2086
want=$(HEARTH_GPU_GRAPHS=0 "$hearth" generate -m $args)
# shellcheck disable=SC2086
got=$(HEARTH_GPU_GRAPHS=1 "$hearth" generate -m $args --verbose 2>"$build/gpu_check_graphs.log")
if [[ -n $want && $want == "$got" ]] && grep -q 'nodes captured' "$build/gpu_check_graphs.log"; then
  echo "same tokens with captured graphs"
else
  echo "DIFFERENT with captured graphs (or none captured):"$'\n'"  off: $want"$'\n'"  on: $got"
  cat "$build/gpu_check_graphs.log"
  failed=1
fi

echo "== decode speed (bench model; tokens/s on each device)"
bench=$root/models/bench-1b-q4_0.gguf
if [[ ! -f $bench ]]; then
  python3 "$root/scripts/make_bench_model.py" --types q4_0 >/dev/null 2>&1 || true
fi
if [[ -f $bench ]]; then
  for dev in "$kind:0" cpu; do
    "$hearth" bench -m "$bench" --device "$dev" || failed=1
  done
  echo "-- $kind:0 without graph capture"
  HEARTH_GPU_GRAPHS=0 "$hearth" bench -m "$bench" --device "$kind:0" || failed=1
else
  echo "no bench model (scripts/make_bench_model.py failed); speed not measured"
fi

echo "== result: $([[ $failed == 0 ]] && echo PASS || echo FAIL)"
exit "$failed"
