#!/usr/bin/env bash
# Installs what hearth builds with, from Debian's packages. Idempotent: it
# only calls apt-get when something is missing (so it needs root only then).
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libabsl-dev libdnnl-dev libgtest-dev
          nlohmann-json3-dev libcpp-httplib-dev pybind11-dev python3 python3-venv python3-pip clang
          libclang-rt-14-dev hipcc libamdhip64-dev)
# hipcc and libamdhip64-dev build the ROCm plugin (nothing AMD runs here); the
# CUDA plugin is built when the machine has NVIDIA's toolkit (nvcc), which
# Debian does not ship.
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "hearth: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
