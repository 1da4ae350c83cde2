#!/usr/bin/env bash
# The Python package as a user gets it: `pip install ./python` in a fresh virtual environment
# (setuptools-rust builds the library into the package), the wheel's platform tag, `mypy
# --strict`, then the module's tests against the installed package and the emulator, with no
# PAN_OFFLINE_LIB and no PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
venv=$PWD/target/ci-venv
rm -rf "$venv" target/ci-wheels
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q mypy auditwheel

"$venv/bin/pip" install ./python
"$venv/bin/pip" wheel -q --no-deps -w target/ci-wheels ./python
wheel=$(ls target/ci-wheels/pan_offline-*.whl)
echo "wheel: $wheel"
case "$wheel" in *-none-any.whl) echo "not a platform wheel"; exit 1 ;; esac
python3 -m zipfile -l "$wheel" | grep 'pan_offline/_native.*\.so' >/dev/null || { echo "no library in the wheel"; exit 1; }
version=$(cargo_version)
case "$wheel" in */pan_offline-"$version"-*) ;; *) echo "python/pyproject.toml's version is not $version"; exit 1 ;; esac
"$venv/bin/auditwheel" show "$wheel" | tee target/ci-wheels/auditwheel.txt
grep -q 'platform tag: "manylinux_' target/ci-wheels/auditwheel.txt
# pip's in-tree build leaves these beside the sources
rm -rf python/build python/*.egg-info

echo "== mypy --strict: the package and an example"
(cd python && "$venv/bin/mypy" --strict pan_offline examples/create_and_wait.py)

echo "== the module's tests against the installed package"
start_emulator
# From a directory without the sources, so `import pan_offline` can only find the installed one.
(cd /tmp && env -u PAN_OFFLINE_LIB -u PYTHONPATH PAN_OFFLINE_EXPECT_INSTALLED=1 \
   "$venv/bin/python" "$OLDPWD/tests/python/test_module.py" -v 2>&1 | tail -n 25)
(cd /tmp && "$venv/bin/python" -m pan_offline --parse-callback '{"status":0,"fileID":5}')
