#!/usr/bin/env bash
# The allocation-failure sweep (issue 17, class 1; docs/reliability.md,
# "Out of memory"). For each scenario, runs the hearth command once with no
# fault to count its allocations, then once per N with the Nth allocation
# failing (tests/alloc_fault/alloc_fault.cc, LD_PRELOADed), and sorts every
# run into one of:
#   ok        exit 0 (the failure was absorbed)
#   error     exit 1 with a "hearth: <message>" line: the failure was
#             reported and the process unwound cleanly
#   oom       exit 3 with the one line "hearth: out of memory ...": the
#             CLI's deliberate end (its new-handler)
#   oom-lib   a system library's own deliberate end on a failed malloc, with
#             its one out-of-memory line: libgomp's "Out of memory
#             allocating N bytes" (exit 1), glibc's "Fatal glibc error: ...
#             out of memory" (abort); only with -k new,malloc
#   CRASH     anything else: a signal, a sanitizer report, std::terminate,
#             glibc's heap checks, a hang (60 s), another exit code
# and exits 1 if any run crashed (the first few are printed with their
# stderr; all are listed in the work folder).
#
# usage: scripts/alloc_sweep.sh [-b BUILD_DIR] [-p MAX_POINTS] [-k KINDS] [-j JOBS]
#                               [-o WORK_DIR] [SCENARIO...]
#   -b  a configured and built tree (default: build); needs bin/hearth,
#       alloc_fault/libhearth-alloc-fault.so and alloc_fault/hearth-capi-alloc
#       (ninja hearth_alloc_fault hearth_capi_alloc)
#   -p  at most this many points per scenario, evenly strided over 1..total
#       (default 0: every N, the full sweep)
#   -k  "new" (every operator new; default) or "new,malloc" (also the C allocator)
#   -j  runs at a time (default: nproc)
#   -o  where logs go (default: BUILD_DIR/alloc_sweep)
# Scenarios (default: all): info_model generate_f32 generate_q4_0 info_lora
#   generate_lora data (the CLI, whose new-handler ends the process: class
#   oom), capi_generate capi_lora capi_lora_gguf capi_train capi_engine
#   (the library through hearth.h with no handler, tests/alloc_fault/
#   capi_alloc.c: a failure must come back as RESOURCE_EXHAUSTED, class
#   error, and a second pass must then succeed; its exit codes 4-6 are CRASH)
# Under a sanitizer build (ASan first in the link order) the shim is
# preloaded ahead of it with ASAN_OPTIONS=verify_asan_link_order=0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [[ "${1:-}" == --one ]]; then
  # Internal: one run. --one N OUT_PREFIX CMD...
  n=$2 out=$3
  shift 3
  set +e
  HEARTH_ALLOC_FAIL_AT=$n timeout -k 5 60 "$@" >"$out.stdout" 2>"$out.stderr"
  rc=$?
  set -e
  err=$out.stderr
  class=CRASH
  lines=$(grep -c . "$err" || true)
  if grep -qE 'terminate called|AddressSanitizer|LeakSanitizer|runtime error:|free\(\)|double free|corrupted|malloc\(\)|Segmentation' "$err"; then
    class=CRASH
  elif [[ $lines == 1 && $rc == 1 ]] && grep -qE '^libgomp: Out of memory allocating [0-9]+ bytes$' "$err"; then
    class=oom-lib
  elif [[ $lines == 1 && $rc == 134 ]] && grep -qE '^Fatal glibc error: .*: out of memory$' "$err"; then
    class=oom-lib
  elif [[ $rc == 0 ]]; then
    class=ok
  elif [[ $rc == 1 ]] && grep -q '^hearth: ' "$err"; then
    class=error
  elif [[ $rc == 3 && $lines == 1 ]] && grep -q '^hearth: out of memory' "$err"; then
    class=oom
  fi
  echo "$n $class $rc"
  exit 0
fi

build=$root/build
max_points=0
kinds=new
jobs=$(nproc)
work=
while getopts "b:p:k:j:o:" opt; do
  case $opt in
    b) build=$(cd "$OPTARG" && pwd) ;;
    p) max_points=$OPTARG ;;
    k) kinds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    o) work=$OPTARG ;;
    *) sed -n '2,36p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
work=${work:-$build/alloc_sweep}
hearth=$build/bin/hearth
shim=$build/alloc_fault/libhearth-alloc-fault.so
capi=$build/alloc_fault/hearth-capi-alloc
for f in "$hearth" "$shim" "$capi"; do
  [[ -x $f || -f $f ]] || { echo "alloc_sweep: $f is missing (build hearth_cli, hearth_alloc_fault and hearth_capi_alloc)" >&2; exit 2; }
done

data=$root/tests/data
declare -A cmds=(
  [info_model]="$hearth info -m $data/models/tiny-llama-f32.gguf"
  [generate_f32]="$hearth generate -q -t 1 -m $data/models/tiny-llama-f32.gguf -p Hello -n 3 --temp 0"
  [generate_q4_0]="$hearth generate -q -t 1 -m $data/models/tiny-llama256-q4_0.gguf -p Hello -n 3"
  [info_lora]="$hearth info --lora $data/lora/llama-all"
  [generate_lora]="$hearth generate -q -t 1 -m $data/models/tiny-llama-f32.gguf -p Hello -n 2 --temp 0 --lora $data/lora/llama-all.gguf:0.5"
  [data]="$hearth data -t 1 -m $data/models/tiny-llama-f32.gguf $data/training/clinic.jsonl"
  # The library without the CLI's new-handler (tests/alloc_fault/capi_alloc.c):
  # counted from after the plugins are loaded.
  [capi_generate]="env HEARTH_ALLOC_ARM=call $capi $data/models/tiny-llama256-q4_0.gguf"
  [capi_lora]="env HEARTH_ALLOC_ARM=call $capi $data/models/tiny-llama-f32.gguf --lora $data/lora/llama-all"
  [capi_lora_gguf]="env HEARTH_ALLOC_ARM=call $capi $data/models/tiny-llama-f32.gguf --lora $data/lora/llama-all.gguf"
  [capi_train]="env HEARTH_ALLOC_ARM=call $capi $data/models/tiny-llama-f32.gguf --data $data/training/clinic.jsonl --train"
  [capi_engine]="env HEARTH_ALLOC_ARM=call $capi $data/models/tiny-llama256-q4_0.gguf --engine"
)
scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] ||
  scenarios=(info_model generate_f32 generate_q4_0 info_lora generate_lora data
    capi_generate capi_lora capi_lora_gguf capi_train capi_engine)

# The shim must come before the sanitizer runtime to see the allocations.
export LD_PRELOAD=$shim${LD_PRELOAD:+:$LD_PRELOAD}
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0
export HEARTH_ALLOC_FAIL_KINDS=$kinds
unset HEARTH_ALLOC_COUNT_OUT HEARTH_ALLOC_FAULT_VERBOSE

rm -rf "$work"
mkdir -p "$work"
failed=0
printf '%-14s %7s %7s %6s %6s %6s %8s %6s\n' scenario total tried ok error oom oom-lib CRASH
for s in "${scenarios[@]}"; do
  [[ -n ${cmds[$s]:-} ]] || { echo "alloc_sweep: unknown scenario '$s'" >&2; exit 2; }
  read -r -a cmd <<<"${cmds[$s]}"
  dir=$work/$s
  mkdir -p "$dir"
  # The clean run: must succeed; gives the number of points.
  if ! HEARTH_ALLOC_FAIL_AT=0 HEARTH_ALLOC_COUNT_OUT=$dir/count "${cmd[@]}" \
      >"$dir/clean.stdout" 2>"$dir/clean.stderr"; then
    echo "alloc_sweep: $s fails without a fault:" >&2
    cat "$dir/clean.stderr" >&2
    exit 1
  fi
  total=$(cat "$dir/count")
  stride=1
  if [[ $max_points -gt 0 && $total -gt $max_points ]]; then
    stride=$(((total + max_points - 1) / max_points))
  fi
  seq 1 "$stride" "$total" |
    xargs -P "$jobs" -I{} "$0" --one {} "$dir/run-{}" "${cmd[@]}" >"$dir/results" 2>"$dir/shell.stderr"
  sort -n -o "$dir/results" "$dir/results"
  tried=$(grep -c '' "$dir/results" || true)
  count() { grep -c " $1 " "$dir/results" || true; }
  n_ok=$(count ok) n_error=$(count error) n_oom=$(count oom) n_lib=$(count oom-lib)
  n_crash=$(count CRASH)
  printf '%-14s %7s %7s %6s %6s %6s %8s %6s\n' "$s" "$total" "$tried" "$n_ok" "$n_error" "$n_oom" \
    "$n_lib" "$n_crash"
  # Keep the logs of crashes only; print the first three.
  shown=0
  while read -r n class rc; do
    if [[ $class == CRASH ]]; then
      failed=1
      if [[ $shown -lt 3 ]]; then
        echo "  CRASH at N=$n (exit $rc): ${cmd[*]}" >&2
        head -c 1500 "$dir/run-$n.stderr" | sed 's/^/    /' >&2
        shown=$((shown + 1))
      fi
    else
      rm -f "$dir/run-$n.stdout" "$dir/run-$n.stderr"
    fi
  done <"$dir/results"
done
if [[ $failed != 0 ]]; then
  echo "alloc_sweep: crashes found; logs in $work/<scenario>/run-N.stderr" >&2
  exit 1
fi
echo "alloc_sweep: no crash"
