#!/usr/bin/env bash
# The README's shell, Go, JavaScript and CMake blocks, run as a user would run them (C, C++ and
# Python blocks are tests/readme.rs's). In a copy of the working tree: every shell block runs
# as written (the README's own test command, `cargo test`, is .ci/run's and is left out), which
# installs the library into /usr/local with cargo cinstall, builds app.c (the README's first C
# block) with pkg-config, and installs the Python package into a virtual environment; then each
# CMake block configures and builds app.c against the installed package, and the Go and
# JavaScript blocks are built and run against the emulator. Needs what .ci/cinstall.sh and
# .ci/go-node.sh install (cargo-c, cmake, Go, npm).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
root=$PWD
run=$root/target/readme-run
rm -rf "$run"
mkdir -p "$run/work" "$run/blocks"
git ls-files -z | xargs -0 cp --parents -t "$run/work"
ln -s "$root/target" "$run/work/target"
cargo build --release --quiet
for lang in sh go js cmake c; do
  echo "README ${lang} blocks: $(python3 .ci/readme_blocks.py "$lang" "$run/blocks/$lang")"
done
cp "$run/blocks/c/0.c" "$run/work/app.c"
python3 -m venv "$run/venv"

echo "== shell blocks"
for f in "$run/blocks/sh/"*.sh; do
  grep -v '^cargo test\b' "$f" > "$f.run"
  bash -n "$f"
  echo "-- $(basename "$f"): $(grep -c . "$f.run") command(s)"
  (cd "$run/work" && PATH="$run/venv/bin:$PATH" bash -euo pipefail "$f.run" >"$f.log" 2>&1) ||
    { tail -n 30 "$f.log"; echo "README shell block $(basename "$f") failed"; exit 1; }
done
test -x "$run/work/app"
# The README's static line links the .a, not the .so.
# readelf's output first, so that a missing app_static fails the script (a `!` pipeline would pass).
dynamic=$(readelf -d "$run/work/app_static")
! grep 'NEEDED.*libpan_offline' >/dev/null <<<"$dynamic" ||
  { echo "the README's static build needs libpan_offline.so"; exit 1; }

start_emulator
export PAN_TOKEN=test-token
libdir=$(pkg-config --variable=libdir pan_offline)
export LD_LIBRARY_PATH=$libdir

echo "== CMake blocks (against the package cargo cinstall put in /usr/local)"
for f in "$run/blocks/cmake/"*.cmake; do
  d=$run/cmake-$(basename "$f" .cmake)
  mkdir -p "$d" && cp "$f" "$d/CMakeLists.txt" && cp "$run/work/app.c" "$d/"
  cmake -S "$d" -B "$d/build" >/dev/null && cmake --build "$d/build" >/dev/null
  # It makes its call (the first C block uses a token of its own, refused): no signal.
  rc=0; "$d/build/app" >/dev/null 2>&1 || rc=$?
  [ "$rc" -lt 128 ] || { echo "app died by signal $((rc - 128))"; exit 1; }
  echo "-- $(basename "$f"): configured, built, ran"
done

echo "== Go blocks"
export GOCACHE=$root/target/go-cache GOPATH=$root/target/go GOFLAGS=-mod=mod GOTOOLCHAIN=local
for f in "$run/blocks/go/"*.go; do
  d=$run/go-$(basename "$f" .go)
  mkdir -p "$d" && cp "$f" "$d/main.go" && printf 'module readme\n\ngo 1.19\n' > "$d/go.mod"
  (cd "$d" && go vet . && go build -o app .)
  "$d/app" | tail -n 2   # the emulator simulates the download of a URL it does not serve
done

echo "== JavaScript blocks (with examples-node's koffi)"
for f in "$run/blocks/js/"*.js; do
  cp "$f" "$run/work/examples-node/readme-$(basename "$f")"
  PAN_OFFLINE_LIB=$libdir/libpan_offline.so node "$run/work/examples-node/readme-$(basename "$f")" | tail -n 2
done
