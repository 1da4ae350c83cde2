#!/usr/bin/env bash
# The Go (cgo, pkg-config) and Node.js (koffi from npm) examples, built against the prefix that
# .ci/cinstall.sh installed, run against the emulator: a task that succeeds (exit 0, progress
# lines from the Go/JS callback), a download that fails (3), a refused token (1, with the
# server's code and the trace ID) and bad usage (2).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
prefix=$PWD/target/cinstall
test -f "$prefix/lib/pkgconfig/pan_offline.pc" || { echo "run .ci/cinstall.sh first"; exit 1; }
missing=()
command -v go >/dev/null || missing+=(golang-go)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig LD_LIBRARY_PATH=$prefix/lib
export PAN_OFFLINE_LIB=$prefix/lib/libpan_offline.so
export GOCACHE=$PWD/target/go-cache GOPATH=$PWD/target/go GOFLAGS=-mod=mod GOTOOLCHAIN=local
(cd examples-go && go vet . && go build -o ../target/go-example .)
(cd examples-node && npm ci --no-audit --no-fund --silent)

start_emulator

expect() { # expect EXIT_CODE PATTERN -- command...
  local want=$1 pattern=$2; shift 3
  set +e; out=$("$@" 2>&1); got=$?; set -e
  echo "$out" | sed 's/^/    /'
  [ "$got" = "$want" ] || { echo "exit $got, expected $want: $*"; exit 1; }
  echo "$out" | grep -Eq "$pattern" || { echo "no /$pattern/ in the output of: $*"; exit 1; }
}
for run in "target/go-example" "node examples-node/offline_download.js"; do
  echo "== $run"
  # shellcheck disable=SC2086
  expect 0 '% succeeded' -- env PAN_TOKEN=test-token $run "$PAN_API_BASE_URL/files/ok.bin?size=300000"
  # shellcheck disable=SC2086
  expect 3 'failed after' -- env PAN_CLIENT_ID=test-client PAN_CLIENT_SECRET=test-secret $run "$PAN_API_BASE_URL/files/missing"
  # shellcheck disable=SC2086
  expect 1 'server code: 401' -- env PAN_TOKEN=not-a-token $run "$PAN_API_BASE_URL/files/x"
  # shellcheck disable=SC2086
  expect 1 'trace ID: .+_emulator' -- env PAN_TOKEN=not-a-token $run "$PAN_API_BASE_URL/files/x"
  # shellcheck disable=SC2086
  expect 2 'usage' -- env -u PAN_TOKEN $run
done
