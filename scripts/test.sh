#!/usr/bin/env bash
# Install everything the tests need into .venv (created if missing) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
MFREC_EXTRAS="dev,dask" source scripts/_venv.sh  # dask: the Dask engine and mfrec tune --engine dask tests
PY=.venv/bin/python
# The optional torch extra, CPU build: the neural-baseline tests need it. torch==2.13.0 is the CPU
# wheel this machine kind keeps on disk; a plain `pip install torch` would pull GBs of CUDA packages.
if ! $PY -c "import torch" 2>/dev/null; then
    pip_quiet install "torch==2.13.0" \
        || echo "note: torch==2.13.0 could not be installed; the neural-baseline tests will be skipped" >&2
fi
export MPLBACKEND=Agg
# Kernels once more with the JIT off, so their Python runs under coverage and in readable tracebacks.
NUMBA_DISABLE_JIT=1 $PY -m pytest -q -p no:cacheprovider -m nojit "$@" || { rc=$?; [ $rc -eq 5 ] || exit $rc; }
$PY -m pytest -q "$@"
