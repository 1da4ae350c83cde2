#!/usr/bin/env bash
# Runs the C test programs that `cargo test` compiled (target/debug/c-tests) under valgrind
# memcheck against the emulator: zero errors and zero definitely-lost bytes, or it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/debug/c-tests

coproc EMU { exec python3 tests/emulator/pan_emulator.py --watch-stdin --max-seconds 600; }
read -r line <&"${EMU[0]}"
export PAN_API_BASE_URL=${line#PAN_EMULATOR_URL=}

status=0
for prog in test_abi_shared test_abi_static test_workflow; do
  [ -x "$dir/$prog" ] || { echo "$dir/$prog is missing: run cargo test first"; exit 1; }
  echo "-- valgrind $prog"
  if ! valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
      --log-file="$dir/$prog.valgrind.log" "$dir/$prog" >"$dir/$prog.out"; then
    status=1
  fi
  tail -n 1 "$dir/$prog.out"
  grep -E "ERROR SUMMARY|definitely lost|in use at exit|total heap usage" "$dir/$prog.valgrind.log" | sed 's/^==[0-9]*== */   /'
  [ $status -eq 0 ] || cat "$dir/$prog.valgrind.log"
done
exit $status
