"""Inference from a trained ALS run: fold-in of new users, recommendations, similar movies, explanations.

- ``api.load_experiment`` (``mfrec.load_experiment``): a run folder with recommend/similar/fold_in/
  explain; its ``recommender`` (built once by ``recommender_for``) serves Inference.py, the
  interactive loop and the notebook alike.
- ``open_run(name_or_path)``: load a run by name or path, or the most recent successful one.
- Neural runs (the torch extra): neumf and genre-embedding runs are read from their ``factors.npz``
  (the ALS key set) by the same ``Recommender``; a made-up user is folded in with the ALS user
  half-step against their movie factors (an approximation, said in the output). sequential and
  attention runs get the narrower recommenders of ``mfrec.inference.neural``.
- New users are folded in by ``FactorModel.fold_in`` (``mfrec.models.factor``), the model's own ALS
  user half-step shrunk towards the training users (the run's population prior, when it has one);
  ``foldin.Decomposition`` (one Cholesky factor, solved for the listed films only) splits the resulting
  scores per rating (and the prior's part); ``foldin.explain_contributions`` returns all of it at once.
- ``rankers``: ``--rank-by``, one run ranks a list and another predicts its ratings.
- EASE runs (ease.npz): ``mfrec.inference.ease.EaseRecommender`` scores x · B; a made-up user needs
  no fitting and every "why" is exact; the lists carry ``ease_score``, not a predicted rating.
- ``topk.recommend_all``: top-k for every user of a model, BLAS-scored blocks through the one
  Numba top-k kernel (``mfrec.kernels.topk.topk_rows``, which also serves one user's request).
"""

from __future__ import annotations

import os
from pathlib import Path

from mfrec.errors import MfrecError, ModelError
from mfrec.experiments.run import why_unfinished
from mfrec.experiments.summary import Summary

DEFAULT_RUNS = Path("Experiments_")


MODEL_FILES = ("model.npz", "factors.npz", "model.json", "ease.npz")  # ALS, neumf/genre-embedding, any neural run, EASE


def supported_modes(kind: str | None) -> frozenset:
    """The request modes (``recommend.MODES`` keys) a run of this model kind answers."""
    from mfrec.inference.ease import EaseRecommender
    from mfrec.inference.neural import PairRecommender, SequenceRecommender
    from mfrec.inference.recommend import Recommender

    return {"sequential": SequenceRecommender.supports, "attention": PairRecommender.supports,
            "ease": EaseRecommender.supports,
            "bias": Recommender.supports - {"similar"}}.get(str(kind), Recommender.supports)  # bias: no movie factors


def _successful_runs(root: Path) -> list[tuple[str, float, Path, str | None]]:
    """(finished, mtime, folder, model kind) of every run under ``root`` with status "ok" and a model file."""
    found = []
    if root.is_dir():
        for d in root.iterdir():
            summary = d / "summary.json"
            if not (summary.is_file() and any((d / f).is_file() for f in MODEL_FILES)):
                continue
            try:
                s = Summary.read(summary)
            except (OSError, MfrecError):  # a damaged run folder is never "the latest successful run"
                continue
            if s.get("status") == "ok":
                kind = s.get("model") or (s.get("config") or {}).get("model")
                found.append((str(s.get("finished", "")), summary.stat().st_mtime, d, kind))
    found.sort(key=lambda t: (t[0], t[1]))
    return found


def latest_run(root: str | os.PathLike = DEFAULT_RUNS, mode: str | None = None) -> Path:
    """The most recently finished run under ``root`` with status "ok" and a model file.

    With ``mode`` (a ``recommend.MODES`` key, as Inference.py passes) the most recent run of any kind
    (ALS model.npz, neural factors.npz / model.json) that can answer that request; without it the
    most recent ALS run with a model.npz (what a notebook reading ALS arrays needs, even when a
    neural run finished later)."""
    return _latest(Path(root), mode)[0]


def _latest(root: Path, mode: str | None) -> tuple[Path, list[tuple[str, str | None]]]:
    """(the run, the newer successful runs passed over because their kind cannot answer ``mode``)."""
    found = _successful_runs(root)
    if mode is None:
        found = [f for f in found if (f[2] / "model.npz").is_file()]
        if not found:
            raise MfrecError(f"no successful ALS run with a model.npz under {root}/: train one with Main.py, "
                             f"or pass --experiment")
        return found[-1][2], []
    if not found:
        raise MfrecError(f"no successful run with a model file under {root}/: train one with Main.py, or pass --experiment")
    skipped = []
    for _, _, d, kind in reversed(found):
        if mode in supported_modes(kind):
            return d, skipped
        skipped.append((d.name, kind))
    from mfrec.inference.recommend import MODES

    raise MfrecError(f"no successful run under {root}/ can answer {MODES.get(mode, mode)}: the runs there are "
                     f"{', '.join(sorted({str(k) for *_, k in found}))} models; pass --experiment or train another")


def open_run(experiment: str | os.PathLike | None = None, root: str | os.PathLike = DEFAULT_RUNS,
             mode: str | None = None):
    """``(Experiment, how)``: the run named/located by ``experiment``, or the latest successful one
    (with ``mode``, the latest whose kind can answer that request; the output names any newer run passed over)."""
    from mfrec.inference.api import load_experiment

    if experiment is None or str(experiment) == "":
        path, skipped = _latest(Path(root), mode)
        exp = load_experiment(path, runs_root=root)
        how = f"using the most recent successful run: {exp.name} (finished {exp.summary.get('finished', '?')})"
        if skipped:
            from mfrec.inference.recommend import MODES

            how += (f"; passed over the newer {', '.join(f'{n} ({k})' for n, k in skipped)}, which cannot answer "
                    f"{MODES.get(mode, mode)}")
    else:
        exp = load_experiment(experiment, runs_root=root)
        how = f"using run {exp.name}"
    unfinished = why_unfinished(exp.path)  # a failed, interrupted or still-running run has no model to trust
    if unfinished:
        raise ModelError(f"run {exp.name} {unfinished}: pick another run")
    return exp, how


def recommender_for(exp):
    """A new ``Recommender`` for a loaded experiment (``LoadedExperiment.recommender`` keeps one).

    ALS runs: model.npz. EASE runs: ease.npz behind ``EaseRecommender``. neumf / genre-embedding runs: their factors.npz (same schema). sequential
    and attention runs: ``mfrec.neural.load_model`` behind ``SequenceRecommender`` / ``PairRecommender``.
    """
    from mfrec.inference.recommend import Recommender

    path = Path(exp.path)
    kind = exp.config.get("model") or exp.summary.get("model")
    if (path / "ease.npz").is_file():
        from mfrec.inference.ease import EaseRecommender

        return EaseRecommender(exp.model, exp.dataset, run_name=exp.name)
    if (path / "model.npz").is_file() or (path / "factors.npz").is_file():
        rec = Recommender(exp.factors, exp.dataset, run_name=exp.name)
        if kind == "bayes" and (path / "samples.npz").is_file():
            from mfrec.models.bayes import BayesSamples

            rec.samples = BayesSamples.load(path / "samples.npz")
        return rec
    if kind in ("sequential", "attention") and (path / "model.json").is_file():
        from mfrec.inference.neural import PairRecommender, SequenceRecommender
        from mfrec.neural import load_model

        cls = SequenceRecommender if kind == "sequential" else PairRecommender
        return cls(load_model(path), exp.dataset, run_name=exp.name)
    if kind in ("neumf", "genre-embedding"):
        raise ModelError(f"run {exp.name} ({kind}) has no factors.npz: train it again to get one "
                         f"(recommendations read its factors from that file)")
    raise ModelError(f"run {exp.name} has no model.npz, factors.npz or neural model.json: recommendations need "
                     f"an ALS run (bias, mf, mf-genre) or a neural one (neumf, genre-embedding, sequential, attention)")


__all__ = ["DEFAULT_RUNS", "MODEL_FILES", "supported_modes", "latest_run", "open_run", "recommender_for"]
