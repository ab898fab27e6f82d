#!/usr/bin/env bash
# The main job end to end on built-in synthetic data, offline: prepare the data, train, recommend.
# Creates (or reuses) .venv. Extra arguments go to the training command.
set -euo pipefail
cd "$(dirname "$0")/.."
MFREC_EXTRAS="" source scripts/_venv.sh
PY=.venv/bin/python
$PY Data_processing.py --dataset synthetic --shape ml-1m --split random --val-fraction 0.1 --name demo
$PY Main.py --data demo --model mf-genre --name demo "$@"
# A made-up user who loved movies 1, 2 and 3 and did not care for movie 4 (synthetic movieIds).
$PY Inference.py --like 1 --like 2 --like 3 --rate "4=2" --top 10 --label demo-user
