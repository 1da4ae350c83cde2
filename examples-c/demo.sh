#!/usr/bin/env bash
# The demo: build the library, start the bundled emulator on loopback, compile the C example
# and create a task against the emulator. Usage: bash examples-c/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --lib
out=target/debug/c-demo
mkdir -p "$out"
cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples-c/offline_download.c \
   -Ltarget/debug -lpan_offline -Wl,-rpath,"$PWD/target/debug" -o "$out/offline_download"

# The emulator prints its URL first, and stops when this script ends (its stdin closes).
coproc EMU { exec python3 tests/emulator/pan_emulator.py --watch-stdin --max-seconds 300; }
read -r line <&"${EMU[0]}"
base=${line#PAN_EMULATOR_URL=}
echo "emulator: $base"

export PAN_API_BASE_URL="$base" PAN_TOKEN=test-token
echo "\$ offline_download $base/files/demo.mp4?size=1048576 --name demo.mp4 --dir 10023"
"$out/offline_download" "$base/files/demo.mp4?size=1048576" --name demo.mp4 --dir 10023
echo "\$ offline_download ftp://example.com/x   # refused before anything is sent"
"$out/offline_download" "ftp://example.com/x" || echo "(exit status $?)"
