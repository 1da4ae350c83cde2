#!/usr/bin/env bash
# The headers pass doxygen with WARN_IF_UNDOCUMENTED, WARN_NO_PARAMDOC and WARN_AS_ERROR; and
# the same settings do fail on a function with an undocumented parameter (so the check can fail).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v doxygen >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq doxygen; }
rm -rf target/doxygen
doxygen Doxyfile
echo "doxygen $(doxygen --version): no warning in include/pan_offline.h and include/pan_offline.hpp"

probe=target/doxygen-probe
mkdir -p "$probe"
printf '/** @file probe.h\n * @brief probe */\n/** Adds.\n * @param a  one.\n * @return the sum. */\nint add(int a, int b);\n' \
  > "$probe/probe.h"
if (sed -e "s|^INPUT .*|INPUT = $probe/probe.h|" -e "s|^OUTPUT_DIRECTORY .*|OUTPUT_DIRECTORY = $probe/out|" Doxyfile \
    | doxygen - >"$probe/log" 2>&1); then
  cat "$probe/log"; echo "doxygen passed a header with an undocumented parameter"; exit 1
fi
grep -q "parameter 'b'" "$probe/log" && echo "and it fails on an undocumented parameter, as it should"
