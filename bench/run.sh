#!/usr/bin/env bash
# The benchmark, one command: bash bench/run.sh [--quick]
# Installs nginx, wrk, valgrind, strace, openssl and libcurl's headers from the distribution
# when missing, and httpx and requests (PyPI) into target/bench-venv; builds the release library
# and the C clients (and the floor), then runs bench/run.py (see its docstring).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v strace >/dev/null || missing+=(strace)
command -v openssl >/dev/null || missing+=(openssl)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
venv=target/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import httpx, requests' 2>/dev/null || "$venv/bin/pip" install -q httpx requests
cargo build --quiet --release --lib
out=target/bench
mkdir -p "$out"
flags=(-std=c11 -O2 -Wall -Wextra -Werror -pthread -Iinclude)
cc "${flags[@]}" bench/pan_bench.c -Ltarget/release -lpan_offline -Wl,-rpath,"$PWD/target/release" -o "$out/pan_bench"
cc "${flags[@]}" bench/curl_bench.c -lcurl -o "$out/curl_bench"
cc "${flags[@]}" bench/floor_bench.c -o "$out/floor_bench"
cc -std=c11 -O2 -Iinclude examples-c/offline_download.c target/release/libpan_offline.a \
   -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o "$out/offline_download_static"
python3 bench/run.py "$@"
python3 bench/shared_state.py "$@"
