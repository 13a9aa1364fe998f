#!/usr/bin/env bash
# The whole test suite: builds hearth and runs every test (ctest, then
# pytest for the Python package), then the C++ suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer (tests labelled "slow",
# which need the real default model, are left out of that pass).
# Then the concurrency tests under ThreadSanitizer (hearth serve's tests
# included), and last, every libFuzzer target runs for 20 s (clang,
# ASan+UBSan).
# HEARTH_SKIP_SANITIZERS=1 / HEARTH_SKIP_FUZZ=1 skip those passes locally.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

# Python packages the tests use (docs_getting_started in ctest needs openai).
python3 -c 'import numpy, pytest, gguf, openai' 2>/dev/null ||
  python3 -m pip install -q numpy pytest gguf openai

echo "== build (Release, with the Python module) and test" >&2
HEARTH_BUILD_DIR=$root/build "$root/scripts/build.sh" -DHEARTH_PYTHON=ON \
  -DPython_EXECUTABLE="$(command -v python3)"
ctest --test-dir "$root/build" --output-on-failure -j"$jobs"

echo "== Python tests" >&2
PYTHONPATH="$root/build/python" python3 -m pytest -q "$root/tests/python"

san_flags=(-DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG")
if [[ "${HEARTH_SKIP_SANITIZERS:-0}" != 1 ]]; then
  echo "== build and test under ASan + UBSan" >&2
  # -O1 -g1 (line tables: enough for the sanitizers' stack traces) compiles
  # the instrumented suite in half the time -O2 -g took, which kept CI on 2
  # cores past its 30-minute budget; the tests run about as fast.
  HEARTH_BUILD_DIR=$root/build-asan HEARTH_BUILD_TYPE=RelWithDebInfo \
    "$root/scripts/build.sh" -DHEARTH_SANITIZE=address,undefined "${san_flags[@]}"
  # gpu_emu_e2e (whole generations on the emulated GPU, a minute each under
  # ASan) run in the Release pass; the GPU kernels' memory accesses are
  # checked here by conformance_gpu_emu_quick.
  # use_tls=0: LeakSanitizer (GCC 12's) crashes while scanning the dynamic
  # TLS of OpenMP threads that oneDNN starts inside the dlopen'd CPU plugin;
  # skipping TLS can only add false reports, never hide a leak.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS=use_tls=0:print_suppressions=0:suppressions=$root/tests/sanitizers/lsan.supp \
    ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs" -LE 'slow|gpu_emu_e2e'
fi

if [[ "${HEARTH_SKIP_SANITIZERS:-0}" != 1 ]]; then
  echo "== concurrency tests under ThreadSanitizer" >&2
  cmake -S "$root" -B "$root/build-tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHEARTH_SANITIZE=thread "${san_flags[@]}" >/dev/null
  ninja -C "$root/build-tsan" -j"$jobs" session_test adapter_test threadpool_test \
    engine_test hearth_backend_cpu hearth_cli
  # Sessions on many threads over one model (C ABI), with and without
  # adapters, and the CPU thread pool.
  TSAN_OPTIONS=halt_on_error=1 "$root/build-tsan/bin/session_test"
  TSAN_OPTIONS=halt_on_error=1 "$root/build-tsan/bin/adapter_test" \
    --gtest_filter='*Threads*:*Detach*'
  TSAN_OPTIONS=halt_on_error=1 "$root/build-tsan/bin/threadpool_test"
  # The engine: its own stepping thread, requests submitted and cancelled
  # from others, callbacks on the engine's thread.
  TSAN_OPTIONS=halt_on_error=1 "$root/build-tsan/bin/engine_test"
  # hearth serve: HTTP handler threads, the engine's thread and the queues
  # between them, through the server's own tests (the load test's memory
  # check means nothing under TSan). libcpp-httplib is not instrumented; its
  # own accesses are suppressed (tests/sanitizers/tsan.supp).
  TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/sanitizers/tsan.supp" \
    HEARTH_BIN="$root/build-tsan/bin/hearth" PYTHONPATH="$root/build/python" \
    python3 -m pytest -q "$root/tests/python/test_serve.py" -k "not load_small"
fi

if [[ "${HEARTH_SKIP_FUZZ:-0}" != 1 ]]; then
  echo "== fuzz targets, 20 s each (scripts/fuzz.sh; docs/reliability.md)" >&2
  "$root/scripts/fuzz.sh" 20
fi
