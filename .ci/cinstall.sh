#!/usr/bin/env bash
# cargo-c: install into a scratch prefix, check what was installed, then build a C program with
# the installed pan_offline.pc (shared and static) and run it against the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo cinstall --version >/dev/null 2>&1; then
  command -v pkg-config >/dev/null && [ -f /usr/include/openssl/ssl.h ] || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config libssl-dev; }
  # Pinned: later cargo-c releases need a newer rustc than this machine's stable.
  cargo install cargo-c --version 0.10.24 --locked
fi
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

coproc EMU { exec python3 tests/emulator/pan_emulator.py --watch-stdin --max-seconds 600; }
read -r line <&"${EMU[0]}"
export PAN_API_BASE_URL=${line#PAN_EMULATOR_URL=}
"$out/test_abi_pc" | tail -n 1
"$out/test_abi_pc_static" | tail -n 1
