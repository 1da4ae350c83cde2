#!/usr/bin/env bash
# The C-side checks of the C test programs, against the emulator:
#   1. valgrind memcheck on the programs `cargo test` compiled (target/debug/c-tests):
#      zero errors and zero definitely-lost bytes;
#   2. the same programs built with AddressSanitizer + UBSan (C side), run clean;
#   3. a soak of 100,000 calls through the release library: RSS must stay flat.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/debug/c-tests
inc=include

# A fresh emulator for each program (start_emulator 1800): each starts from no tasks and no
# live tokens (the emulator, like the service, refuses a fourth live token of one client).
source .ci/lib.sh
status=0

echo "-- valgrind memcheck"
for prog in test_abi_shared test_abi_static test_workflow test_host test_token_source; do
  [ -x "$dir/$prog" ] || { echo "$dir/$prog is missing: run cargo test first"; exit 1; }
  log="$dir/$prog.valgrind.log"
  start_emulator 1800
  if ! valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
      --log-file="$log" "$dir/$prog" >"$dir/$prog.out"; then
    status=1
    cat "$log"
  fi
  echo "$prog: $(tail -n 1 "$dir/$prog.out")"
  grep -E "ERROR SUMMARY|definitely lost" "$log" | sed 's/^==[0-9]*== */   /'
  stop_emulator
done

echo "-- AddressSanitizer + UndefinedBehaviorSanitizer"
san=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
for src in test_abi test_workflow test_host test_token_source; do
  out="$dir/${src}_asan"
  cc -std=c11 -Wall -Wextra -Werror -pedantic -g -pthread "${san[@]}" -I"$inc" "tests/c/$src.c" \
     -Ltarget/debug/deps -lpan_offline -Wl,-rpath,"$PWD/target/debug/deps" -o "$out"
  start_emulator 1800
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
      "$out" >"$out.out" 2>"$out.err"; then
    echo "$src (ASan+UBSan): $(tail -n 1 "$out.out")"
  else
    status=1
    echo "$src (ASan+UBSan) FAILED"; cat "$out.out" "$out.err"
  fi
  stop_emulator
done

echo "-- soak: 100,000 calls, RSS"
cargo build --quiet --release --lib
cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -I"$inc" tests/c/soak.c -Ltarget/release -lpan_offline \
   -Wl,-rpath,"$PWD/target/release" -o "$dir/soak"
start_emulator 1800
"$dir/soak" 100000 | tee "$dir/soak.out" | tail -n 4 || status=1
stop_emulator

exit $status
