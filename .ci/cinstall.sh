#!/usr/bin/env bash
# cargo-c: install into a scratch prefix, check what was installed, then build a C program with
# the installed pan_offline.pc (shared and static) and a CMake project with
# find_package(pan_offline CONFIG) (both targets), and run them against the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
if ! cargo cinstall --version >/dev/null 2>&1; then
  command -v pkg-config >/dev/null && [ -f /usr/include/openssl/ssl.h ] || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config libssl-dev; }
  # Pinned: later cargo-c releases need a newer rustc than this machine's stable.
  cargo install cargo-c --version 0.10.24 --locked
fi
command -v cmake >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake; }
prefix=$PWD/target/cinstall
rm -rf "$prefix"
cargo cinstall --release --prefix="$prefix" --libdir="$prefix/lib"

cmp include/pan_offline.h "$prefix/include/pan_offline.h"
test -f "$prefix/include/pan_offline.hpp"
test -f "$prefix/lib/libpan_offline.a"
so=$(readlink -f "$prefix/lib/libpan_offline.so")
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"
echo "SONAME: $soname"
test -n "$soname" && test -e "$prefix/lib/$soname"

test -f "$prefix/lib/cmake/pan_offline/pan_offlineConfig.cmake"
test -f "$prefix/lib/cmake/pan_offline/pan_offlineConfigVersion.cmake"
# The committed version file is what CMake's own helper writes for Cargo.toml's version.
version=$(cargo_version)
cmake -DVERSION="$version" -DOUT="$PWD/target/pan_offlineConfigVersion.cmake" -P cmake/version.cmake
cmp cmake/pan_offlineConfigVersion.cmake target/pan_offlineConfigVersion.cmake

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
out=target/cinstall-test
mkdir -p "$out"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -pedantic -pthread tests/c/test_abi.c $(pkg-config --cflags --libs pan_offline) \
   -Wl,-rpath,"$prefix/lib" -o "$out/test_abi_pc"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -pedantic -pthread tests/c/test_abi.c $(pkg-config --cflags pan_offline) \
   "$prefix/lib/libpan_offline.a" $(pkg-config --libs-only-l --static pan_offline | sed 's/-lpan_offline//') \
   -o "$out/test_abi_pc_static"

start_emulator
"$out/test_abi_pc" | tail -n 1
"$out/test_abi_pc_static" | tail -n 1

echo "== CMake: find_package(pan_offline CONFIG), once per target"
for target in pan_offline::pan_offline pan_offline::pan_offline_static; do
  build=target/cmake-consumer-${target##*::}
  rm -rf "$build"
  cmake -S tests/cmake -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DPAN_OFFLINE_TARGET="$target" \
        -DCMAKE_BUILD_RPATH="$prefix/lib" >/dev/null
  cmake --build "$build" -- VERBOSE=1 >"$build.log"
  "$build/consumer" | tail -n 1
  if [ "$target" = pan_offline::pan_offline_static ]; then
    # readelf's output first, so that a failing readelf fails the script (a `!` pipeline would pass).
    dynamic=$(readelf -d "$build/consumer")
    ! grep 'NEEDED.*libpan_offline' >/dev/null <<<"$dynamic" || { echo "static consumer links the .so"; exit 1; }
    # The same system libraries as pkg-config --static gives.
    pc=$(pkg-config --libs-only-l --static pan_offline | tr ' ' '\n' | grep -v '^-lpan_offline$' | grep . | sort -u)
    cm=$(grep -o -- ' -l[a-z_]*' "$build.log" | tr -d ' ' | sort -u)
    echo "pkg-config: $(echo $pc)   cmake: $(echo $cm)"
    [ "$pc" = "$cm" ] || { echo "CMake and pkg-config disagree"; exit 1; }
  else
    dynamic=$(readelf -d "$build/consumer")
    grep 'NEEDED.*libpan_offline.so' >/dev/null <<<"$dynamic" || { echo "not linked to the .so"; exit 1; }
  fi
done
# 0.x: the same minor version is compatible, another is not.
for v in 0.2 1.0; do
  if cmake -S tests/cmake -B target/cmake-consumer-v -DCMAKE_PREFIX_PATH="$prefix" \
        -DPAN_OFFLINE_VERSION=$v >/dev/null 2>&1; then echo "version $v was accepted"; exit 1; fi
done
echo "find_package(pan_offline 0.2) and (1.0) refused, as 0.x versions should be"
