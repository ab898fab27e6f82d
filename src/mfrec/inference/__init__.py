"""Inference from a trained ALS run: fold-in of new users, recommendations, similar movies, explanations.

- ``recommender(experiment)``: the ``Recommender`` of a loaded run (cached on it); Inference.py,
  the interactive loop and the notebook API (``Experiment.recommend`` and friends, see ``api``)
  all go through it.
- ``open_run(name_or_path)``: load a run by name or path, or the most recent successful one.
- ``fold_in.fold_in_rows`` / ``fold_in.explain_contributions``: the model's own ALS user half-step on
  new rows, and the exact per-rating decomposition of the resulting scores.
- ``topk.topk_rows`` / ``topk.recommend_all``: the Numba top-k kernel, one user or all of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mfrec.errors import MfrecError, ModelError

DEFAULT_RUNS = Path("Experiments_")


def latest_run(root: str | os.PathLike = DEFAULT_RUNS) -> Path:
    """The most recently finished run under ``root`` with status "ok" and a model.npz."""
    root = Path(root)
    found = []
    if root.is_dir():
        for d in root.iterdir():
            summary = d / "summary.json"
            if not (summary.is_file() and (d / "model.npz").is_file()):
                continue
            try:
                s = json.loads(summary.read_text())
            except (OSError, ValueError):
                continue
            if s.get("status") == "ok":
                found.append((str(s.get("finished", "")), summary.stat().st_mtime, d))
    if not found:
        raise MfrecError(f"no successful ALS run with a model.npz under {root}/: train one with Main.py, or pass --experiment")
    found.sort(key=lambda t: (t[0], t[1]))
    return found[-1][2]


def open_run(experiment: str | os.PathLike | None = None, root: str | os.PathLike = DEFAULT_RUNS):
    """``(Experiment, how)``: the run named/located by ``experiment``, or the latest successful one."""
    from mfrec.experiments import load_experiment

    if experiment is None or str(experiment) == "":
        path = latest_run(root)
        exp = load_experiment(path, root=root)
        how = f"using the most recent successful run: {exp.name} (finished {exp.summary.get('finished', '?')})"
    else:
        exp = load_experiment(experiment, root=root)
        how = f"using run {exp.name}"
    status = exp.summary.get("status")
    if status == "failed":
        raise ModelError(f"run {exp.name} failed ({exp.summary.get('error', 'see its train.log')}): pick another run")
    return exp, how


def recommender(exp):
    """The ``Recommender`` of a loaded experiment, built once and kept on it."""
    from mfrec.inference.model import FactorModel
    from mfrec.inference.recommend import Recommender

    cached = getattr(exp, "_mfrec_recommender", None)
    if cached is None:
        npz = Path(exp.path) / "model.npz"
        if not npz.is_file():
            raise ModelError(f"run {exp.name} has no model.npz: recommendations need an ALS run (bias, mf or mf-genre)")
        cached = Recommender(FactorModel.from_als(exp.model, npz), exp.dataset, run_name=exp.name)
        exp._mfrec_recommender = cached
    return cached


__all__ = ["DEFAULT_RUNS", "latest_run", "open_run", "recommender"]
