#!/usr/bin/env bash
# Install everything the tests need into .venv (created if missing) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# dask: the Dask engine and mfrec tune --engine dask tests; serve, serve-test: mfrec serve and its browser test
MFREC_EXTRAS="dev,dask,serve,serve-test" source scripts/_venv.sh
PY=.venv/bin/python
# The optional torch extra, CPU build: the neural-baseline tests need it. torch==2.13.0 is the CPU
# wheel this machine kind keeps on disk; a plain `pip install torch` would pull GBs of CUDA packages.
if ! $PY -c "import torch" 2>/dev/null; then
    pip_quiet install "torch==2.13.0" \
        || echo "note: torch==2.13.0 could not be installed; the neural-baseline tests will be skipped" >&2
fi
# The browser test of `mfrec serve` drives Debian's chromium through Playwright (which downloads no
# browser here): install it when missing and apt is there (CI runs as root; sudo only if it needs no password).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
    if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
        echo "installing chromium (apt) for the browser test" >&2
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >/dev/null 2>&1 \
            || echo "note: chromium could not be installed; the browser test will be skipped (with the reason)" >&2
    fi
fi
export MPLBACKEND=Agg
# Kernels once more with the JIT off, so their Python runs under coverage and in readable tracebacks.
NUMBA_DISABLE_JIT=1 $PY -m pytest -q -p no:cacheprovider -m nojit "$@" || { rc=$?; [ $rc -eq 5 ] || exit $rc; }
$PY -m pytest -q "$@"
