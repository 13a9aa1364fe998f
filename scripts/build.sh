#!/usr/bin/env bash
# Configures and builds hearth (Release) into build/ (or $HEARTH_BUILD_DIR).
# Extra arguments go to cmake, e.g. -DHEARTH_SANITIZE=address,undefined.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HEARTH_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${HEARTH_BUILD_TYPE:-Release} "$@" >/dev/null
ninja -C "$build" -j"$(nproc)"
