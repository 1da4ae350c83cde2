# Sourced by the CI scripts (from the repository's root).

# Starts the bundled emulator, which ends with this script (it watches its stdin) or after
# $1 seconds (600 by default), and exports PAN_API_BASE_URL, its URL.
start_emulator() {
  coproc EMU { exec python3 tests/emulator/pan_emulator.py --watch-stdin --max-seconds "${1:-600}"; }
  local line
  read -r line <&"${EMU[0]}"
  export PAN_API_BASE_URL=${line#PAN_EMULATOR_URL=}
}

# Stops the emulator start_emulator started.
stop_emulator() {
  kill "$EMU_PID" 2>/dev/null || true
  wait "$EMU_PID" 2>/dev/null || true
}

# The crate's version, from Cargo.toml.
cargo_version() {
  sed -n '/^version = "/{s/^version = "\(.*\)"/\1/p;q;}' Cargo.toml
}
