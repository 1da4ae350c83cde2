#!/usr/bin/env bash
# The demo: build the library, start the bundled emulator on loopback, compile the C example,
# then do the whole job against the emulator: create a task, follow its progress to 100 %,
# receive the callback and parse it. Usage: bash examples-c/demo.sh
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

export PAN_API_BASE_URL="$base"
# The emulator really downloads this 1 MiB source from its own file route, throttled to
# 256 KiB/s so that the progress moves; it POSTs the callback to its own /callback route.
src="$base/files/demo.mp4?size=1048576"
echo "\$ PAN_CLIENT_ID=test-client PAN_CLIENT_SECRET=... offline_download $src --name demo.mp4 --dir 10023 --callback $base/callback --wait"
PAN_CLIENT_ID=test-client PAN_CLIENT_SECRET=test-secret \
  "$out/offline_download" "$src" --name demo.mp4 --dir 10023 --callback "$base/callback" --wait

body=$(python3 - "$base" <<'PY'
import json, sys, time, urllib.request
for _ in range(50):
    got = json.load(urllib.request.build_opener(urllib.request.ProxyHandler({})).open(sys.argv[1] + "/__emu/callbacks"))
    if got:
        print(got[-1])
        break
    time.sleep(0.1)
PY
)
echo "callback received by $base/callback: $body"
echo "\$ offline_download --parse-callback '$body'"
"$out/offline_download" --parse-callback "$body"

echo "\$ PAN_TOKEN=test-token offline_download ftp://example.com/x   # refused before anything is sent"
PAN_TOKEN=test-token "$out/offline_download" "ftp://example.com/x" 2>&1 || echo "(exit status $?)"

# A small batch: one URL per line, one of them twice; a journal makes a rerun safe.
list="$out/demo-list.txt"
rm -f "$out/demo.journal"
printf '# sources for the demo batch\n%s\n%s\n%s\n' "$base/files/a.mp4?size=65536" \
  "$base/files/b.mp4?size=65536" "$base/files/a.mp4?size=65536" > "$list"
echo "\$ PAN_TOKEN=test-token offline_download --batch demo-list.txt --dir 10023 --journal demo.journal --wait"
PAN_TOKEN=test-token "$out/offline_download" --batch "$list" --dir 10023 --journal "$out/demo.journal" --wait
echo "\$ PAN_TOKEN=test-token offline_download --batch demo-list.txt --dir 10023 --journal demo.journal   # again: nothing created twice"
PAN_TOKEN=test-token "$out/offline_download" --batch "$list" --dir 10023 --journal "$out/demo.journal"
