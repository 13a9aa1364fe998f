#!/usr/bin/env bash
# The whole test suite: builds hearth and runs every test (ctest), then the
# same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# HEARTH_SKIP_SANITIZERS=1 skips the second pass (quicker local runs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

echo "== build (Release) and test" >&2
HEARTH_BUILD_DIR=$root/build "$root/scripts/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j"$jobs"

if [[ "${HEARTH_SKIP_SANITIZERS:-0}" != 1 ]]; then
  echo "== build and test under ASan + UBSan" >&2
  HEARTH_BUILD_DIR=$root/build-asan HEARTH_BUILD_TYPE=RelWithDebInfo \
    "$root/scripts/build.sh" -DHEARTH_SANITIZE=address,undefined
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs" -LE slow
fi
