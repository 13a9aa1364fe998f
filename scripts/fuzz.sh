#!/usr/bin/env bash
# Builds hearth's libFuzzer targets (clang, ASan + UBSan, in build-fuzz/) if
# needed and runs each for a bounded time on a fresh copy of its seed corpus
# (fuzz/corpus/<target>/). Fails if any target crashes, leaks, hits UB, runs
# out of memory or time on one input; prints executions per target.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Targets: gguf safetensors lora_file adapter_bind model_load chat_template dataset json
# serve_request tokenizer_llama_spm tokenizer_gpt_2 tokenizer_deepseek_llm (default: all; the "fuzz_"
# prefix is optional).
# Environment: HEARTH_FUZZ_BUILD_DIR (default build-fuzz), HEARTH_FUZZ_JOBS
# (targets run at once, default: nproc), HEARTH_FUZZ_OUT (work dir: corpora,
# logs, crash inputs; default $HEARTH_FUZZ_BUILD_DIR/fuzz-out).
# A crash input is kept as <out>/<target>/crash-*; replay it with
# build-fuzz/bin/fuzz_<target> <file>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
build=${HEARTH_FUZZ_BUILD_DIR:-$root/build-fuzz}
out=${HEARTH_FUZZ_OUT:-$build/fuzz-out}
jobs=${HEARTH_FUZZ_JOBS:-$(nproc)}
all=(gguf safetensors lora_file adapter_bind model_load chat_template dataset json serve_request
  tokenizer_llama_spm tokenizer_gpt_2 tokenizer_deepseek_llm)

targets=()
for t in "${@:-${all[@]}}"; do
  t=${t#fuzz_}
  if [[ " ${all[*]} " != *" $t "* ]]; then
    echo "fuzz.sh: unknown target '$t' (known: ${all[*]})" >&2
    exit 2
  fi
  targets+=("$t")
done

# Longest input libFuzzer may build, per target: GGUF files need room for a
# metadata section with a vocabulary, adapter_bind room for the real test adapters
# (~40 KB); text inputs stay short so each run is fast.
max_len() {
  case $1 in
    gguf | model_load | adapter_bind) echo 65536 ;;
    safetensors | lora_file) echo 16384 ;;
    chat_template | dataset | json | serve_request) echo 4096 ;;
    tokenizer_*) echo 2048 ;;
  esac
}

echo "== build fuzz targets ($build)" >&2
if [[ ! -f $build/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHEARTH_FUZZ=ON -DHEARTH_TESTS=OFF >/dev/null
fi
ninja -C "$build" -j"$(( $(nproc) < 2 ? $(nproc) : 2 ))" $(printf 'fuzz_%s ' "${targets[@]}") >&2

run_one() {
  local t=$1 dir=$out/$1
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  cp -r "$root/fuzz/corpus/$t/." "$dir/corpus/"
  # One worker per target; several targets run side by side instead.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/bin/fuzz_$t" "$dir/corpus" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
      -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 -artifact_prefix="$dir/" \
      >"$dir/log" 2>&1
}

mkdir -p "$out"
declare -A pid_of
failed=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  pid_of[$t]=$!
  running=$((running + 1))
  if (( running >= jobs )); then
    wait -n || true
    running=$((running - 1))
  fi
done

printf '%-28s %-6s %12s %9s %s\n' target result executions exec/s coverage
for t in "${targets[@]}"; do
  rc=0
  wait "${pid_of[$t]}" || rc=$?
  log=$out/$t/log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$( (grep -o "cov: [0-9]*" "$log" || true) | tail -1 | cut -d" " -f2)
  if (( rc == 0 )); then result=ok; else result=FAIL; failed=1; fi
  printf '%-28s %-6s %12s %9s %s\n' "fuzz_$t" "$result" "${execs:-?}" "${rate:-?}" "${cov:-?}"
  if (( rc != 0 )); then
    kept=$(ls "$out/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    echo "---- fuzz_$t exited $rc; log $log; inputs: ${kept:-none}" >&2
    grep -E -A30 '^==[0-9]+==ERROR|runtime error|SUMMARY' "$log" | head -60 >&2 || true
  fi
done
exit $failed
