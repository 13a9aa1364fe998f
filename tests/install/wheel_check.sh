#!/usr/bin/env bash
# wheel_check.sh BUILD_DIR SOURCE_DIR — the Python wheel runs where Abseil,
# oneDNN and OpenMP are absent.
#
# 1. scripts/wheel.sh --from-build BUILD_DIR packs the build tree's wheel
#    files and repairs the wheel with auditwheel (manylinux tag; Abseil,
#    oneDNN, libgomp copied into hearth.libs/).
# 2. The wheel is installed into a fresh virtual environment (numpy from the
#    system's site-packages; nothing from PyPI).
# 3. In a private mount namespace (`unshare -m`, or `unshare -rm` when not
#    root), every file of the system's libdnnl*, libabsl_* and libgomp* in
#    the library directories is covered by a bind mount of /dev/null, so the
#    dynamic loader cannot use them. There, `ldd` of every ELF file in the
#    installed package must resolve nothing to those names outside the
#    package, `import hearth` must generate the same greedy tokens as the
#    build tree, and the `hearth` console script must run `info` (listing
#    the CPU plugin) and `generate`.
set -euo pipefail
build=$(realpath "$1") src=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "wheel_check: $*" >&2; exit 1; }
model=$src/tests/data/models/tiny-llama-f32.gguf

wheel=$("$src/scripts/wheel.sh" --from-build "$build" -o "$work/dist" 2>"$work/wheel.log" | tail -1) \
  || { cat "$work/wheel.log" >&2; fail "scripts/wheel.sh failed"; }
case $(basename "$wheel") in
  hearth-*-manylinux_*.whl) echo "ok: repaired wheel $(basename "$wheel")" ;;
  *) fail "the wheel was not given a manylinux tag: $wheel" ;;
esac

python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install -q --no-deps --no-index "$wheel" || fail "pip install of the wheel failed"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
[[ -x $work/venv/bin/hearth ]] || fail "the wheel installed no hearth console script"

# What the build tree generates (greedy, 6 tokens) is what the wheel must generate.
# (The probe has no single quotes: it is pasted inside '...' below.)
probe='
import sys, hearth
m = hearth.Model(sys.argv[1])
s = m.session()
print("tokens:", repr(s.generate("Once upon a time", max_tokens=6, temperature=0)))
print("module:", hearth.__file__)
'
want=$(PYTHONPATH=$build/python python3 -c "$probe" "$model" | grep '^tokens:') \
  || fail "the build tree's module did not generate"

cat >"$work/inside.sh" <<EOF
set -euo pipefail
hidden=0
for dir in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib; do
  [[ -d \$dir ]] || continue
  for f in "\$dir"/libdnnl* "\$dir"/libabsl_* "\$dir"/libgomp*; do
    [[ -e \$f ]] || continue
    mount --bind /dev/null "\$f" && hidden=\$((hidden + 1))
  done
done
echo "hidden: \$hidden system library files"
(( hidden > 0 )) || { echo "nothing was hidden"; exit 1; }
# The loader must find every library of every ELF file in the package.
find "$site/hearth" "$site/hearth.libs" -type f \( -name '*.so*' -o -path '*/bin/hearth' \) |
while read -r f; do
  deps=\$(ldd "\$f" 2>&1) || { echo "ldd \$f failed: \$deps"; exit 1; }
  if grep -E 'not found|(libdnnl|libabsl_|libgomp)[^ ]* => /(usr/)?lib' <<<"\$deps"; then
    echo "\$f still needs a system copy of the libraries above"; exit 1
  fi
done
cd "$work"
"$work/venv/bin/python" -c '$probe' "$model"
"$work/venv/bin/hearth" info
"$work/venv/bin/hearth" generate -m "$model" -p "Once upon a time" -n 4 --temp 0
EOF

if [[ $(id -u) == 0 ]]; then ns=(unshare -m --propagation private); else ns=(unshare -rm); fi
"${ns[@]}" bash "$work/inside.sh" >"$work/inside.log" 2>&1 ||
  { cat "$work/inside.log" >&2; fail "the wheel did not run with the system libraries hidden"; }
grep '^hidden:' "$work/inside.log"
got=$(grep '^tokens:' "$work/inside.log") || { cat "$work/inside.log" >&2; fail "no tokens"; }
[[ $got == "$want" ]] || fail "the wheel generated '$got', the build tree '$want'"
grep -q "^module: $site/hearth/" "$work/inside.log" || fail "python imported hearth from elsewhere"
grep -q 'libhearth-backend-cpu' "$work/inside.log" || fail "hearth info listed no CPU plugin"
grep -q 'generated:' "$work/inside.log" || fail "the hearth command did not generate"
echo "ok: the wheel imports, generates ($got) and runs the hearth command with the system's" \
  "oneDNN, Abseil and libgomp hidden"
