#!/usr/bin/env bash
# install_check.sh BUILD_DIR SOURCE_DIR CC CXX CMAKE — see CMakeLists.txt.
set -euo pipefail
build=$1 src=$2 cc=$3 cxx=$4 cmake=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
model=$src/tests/data/models/tiny-llama-f32.gguf
prompt="Once upon a time"

fail() { echo "install_check: $*" >&2; exit 1; }

"$cmake" --install "$build" --prefix "$prefix" --component hearth_sdk >"$work/install.log" \
  || { cat "$work/install.log" >&2; fail "cmake --install failed"; }
libdir=$(cd "$prefix" && ls -d lib*/libhearth.so.1 | head -1 | xargs dirname)
for f in include/hearth/hearth.h include/hearth/hearth.hpp include/hearth/hearth_plugin.h \
         "$libdir/libhearth.so.1" "$libdir/libhearth.so" "$libdir/hearth/plugins/libhearth-backend-cpu.so" \
         "$libdir/hearth/plugins/libhearth-ext-banned-strings.so" bin/hearth bin/hearth-conformance \
         "$libdir/cmake/hearth/hearthConfig.cmake" "$libdir/cmake/hearth/hearthConfigVersion.cmake" \
         "$libdir/pkgconfig/hearth.pc"; do
  [[ -e $prefix/$f ]] || fail "$f is not installed"
done
[[ -L $prefix/$libdir/libhearth.so ]] || fail "libhearth.so is not a link to the SONAME"
# Captured first: `objdump | grep -q` under pipefail fails when grep exits
# before objdump has written everything (SIGPIPE).
dynamic=$(objdump -p "$prefix/$libdir/libhearth.so.1")
grep -q 'SONAME *libhearth.so.1' <<<"$dynamic" || fail "libhearth.so.1 has no SONAME libhearth.so.1"

# What the build tree's own C example prints is what every copy must print.
want=$("$build/bin/hearth_example_generate" "$model" "$prompt" 8 | grep -a '^completion:')
[[ -n $want ]] || fail "the build tree's example printed no completion"
check() {  # NAME PROGRAM
  local got
  got=$(env -u HEARTH_PLUGIN_PATH "$2" "$model" "$prompt" 8 | grep -a '^completion:') \
    || fail "$1 failed"
  [[ $got == "$want" ]] || fail "$1 printed '$got', want '$want'"
  echo "ok: $1"
}

# 1. CMake: find_package(hearth CONFIG REQUIRED) -> hearth::hearth.
mkdir -p "$work/cmake-app"
cp "$src/examples/c/generate.c" "$src/examples/cpp/generate.cc" "$work/cmake-app/"
cat >"$work/cmake-app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.22)
project(hearth_consumer C CXX)
find_package(hearth 0.1 CONFIG REQUIRED)
add_executable(generate_c generate.c)
set_target_properties(generate_c PROPERTIES C_STANDARD 11)
target_link_libraries(generate_c PRIVATE hearth::hearth)
add_executable(generate_cpp generate.cc)
set_target_properties(generate_cpp PROPERTIES CXX_STANDARD 17)
target_link_libraries(generate_cpp PRIVATE hearth::hearth)
CM
"$cmake" -S "$work/cmake-app" -B "$work/cmake-app/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" >"$work/cmake.log" 2>&1 \
  || { cat "$work/cmake.log" >&2; fail "configuring against the installed package failed"; }
"$cmake" --build "$work/cmake-app/build" >>"$work/cmake.log" 2>&1 \
  || { cat "$work/cmake.log" >&2; fail "building against the installed package failed"; }
check "C example via find_package" "$work/cmake-app/build/generate_c"
check "C++ example via find_package" "$work/cmake-app/build/generate_cpp"

# 2. pkg-config.
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
flags=$(pkg-config --cflags --libs hearth) || fail "pkg-config does not find hearth.pc"
[[ $(pkg-config --modversion hearth) == [0-9]* ]] || fail "hearth.pc has no version"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Werror "$src/examples/c/generate.c" $flags \
  -Wl,-rpath,"$prefix/$libdir" -o "$work/generate_pc" || fail "cc with pkg-config failed"
# shellcheck disable=SC2086
"$cxx" -std=c++17 -Wall -Werror "$src/examples/cpp/generate.cc" $flags \
  -Wl,-rpath,"$prefix/$libdir" -o "$work/generate_pc_cpp" || fail "c++ with pkg-config failed"
check "C example via pkg-config" "$work/generate_pc"
check "C++ example via pkg-config" "$work/generate_pc_cpp"

# 3. The installed CLI finds the installed plugins by itself.
info=$(env -u HEARTH_PLUGIN_PATH "$prefix/bin/hearth" info) || fail "installed hearth info failed"
grep -q "path: $prefix/$libdir/hearth/plugins/libhearth-backend-cpu.so" <<<"$info" \
  || fail "installed hearth did not load the installed CPU plugin:\n$info"
env -u HEARTH_PLUGIN_PATH "$prefix/bin/hearth" generate -m "$model" -p "$prompt" -n 8 --temp 0 \
  --ban ver -q >/dev/null || fail "installed hearth generate --ban failed"
echo "ok: installed CLI and plugins"
echo "install check passed"
