#!/usr/bin/env bash
# The main job end to end on built-in synthetic data, offline: prepare the data, train, recommend.
# Creates (or reuses) .venv. Extra arguments go to the training command.
set -euo pipefail
cd "$(dirname "$0")/.."
MFREC_EXTRAS="" source scripts/_venv.sh
PY=.venv/bin/python
$PY Data_processing.py --dataset synthetic --shape ml-1m --split random --val-fraction 0.1 --name demo
