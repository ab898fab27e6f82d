"""Top-N side by side: mfrec's models and the peers on one prepared user-last split, one protocol.

    .venv/bin/python Data_processing.py --dataset ml-100k --source /path/to/ml-100k --split user-last \\
        --holdout 5 --val-fraction 0.1 --data-root /tmp/topn-data
    .venv/bin/python benchmarks/topn_side_by_side.py --data /tmp/topn-data/ml-100k-user-last

Models: mfrec's mf, mf-genre, ials (when this mfrec has it: ``mfrec.models.config.MODELS``), ease (with
its default recency weighting of a user's history), ease-plain (the same with ``recency_boost=0``: plain
EASE) and popularity; the peers implicit's AlternatingLeastSquares and BayesianPersonalizedRanking (``pip install
implicit``: the benchmark's own dependency, never mfrec's), EASE written here in plain NumPy float64
from the paper's formula (an independent check of mfrec's float32 LAPACK one), and popularity.

Protocol, the same for every model (``mfrec.evaluation.protocols.ranking_protocol``: one top-k kernel,
the same candidates, the same metrics):

1. **Tune**: fit each setting of the model's grid on the train split; rank the val split (history =
   train, candidates = every movie not rated in train); keep the setting with the best val NDCG@10.
2. **Test, once**: refit the kept setting on train + val; rank the test split (history = train + val,
   candidates = every movie not rated in train or val). Its fit time is the fit seconds reported.
3. **Upper bound** (what the issue quotes for the peers): every setting of the grid refit on train +
   val and ranked on test; the best test NDCG@10 among them. Test data chose it, so it is not a result
   a user could get, only a ceiling for the grid.

Fit seconds are wall time of one fit on train + val after an untimed warm-up fit (Numba compiles
once per process); with one BLAS thread and the models' own threads on every core.

Grids (4 settings each, the penalty that matters, everything else at the library's defaults, k = 64
for the factor models): see ``GRIDS``. Writes ``benchmarks/results/topn_side_by_side.json`` and
prints the README's Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# one BLAS thread, as implicit asks and mfrec's thread check advises: the models' own threads use the cores
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "topn_side_by_side.json"
K = 10
METRICS = ("hit@10", "ndcg@10", "recall@10", "coverage@10")

# each model's grid: 4 values of its main penalty (the peers' brackets their optimum on this split)
GRIDS = {
    "mf": [{"reg": r} for r in (0.1, 0.2, 0.4, 1.0)],
    "mf-genre": [{"reg": r} for r in (0.1, 0.2, 0.4, 1.0)],
    "ials": None,  # mfrec's default reg x {1/4, 1/2, 1, 2}, filled in when the model exists
    "ease": [{"reg": r} for r in (50.0, 100.0, 200.0, 500.0)],
    "ease-plain": [{"reg": r} for r in (50.0, 100.0, 200.0, 500.0)],
    "popularity": [{}],
    "implicit-als": [{"regularization": r} for r in (0.1, 1.0, 10.0, 50.0)],
    "implicit-bpr": [{"regularization": r} for r in (0.001, 0.003, 0.01, 0.03)],
    "numpy-ease": [{"reg": r} for r in (50.0, 100.0, 200.0, 500.0)],
    "numpy-popularity": [{}],
}
LIBRARY = {"mf": "mfrec", "mf-genre": "mfrec", "ials": "mfrec", "ease": "mfrec", "ease-plain": "mfrec",
           "popularity": "mfrec",
           "implicit-als": "implicit", "implicit-bpr": "implicit", "numpy-ease": "peer (NumPy here)",
           "numpy-popularity": "peer (NumPy here)"}


class Factors:
    """A peer's user and item factors as the protocol's ``score_users``."""

    def __init__(self, users, items):
        self.users, self.items = np.asarray(users, np.float32), np.asarray(items, np.float32)

    def score_users(self, users):
        return self.users[np.asarray(users)] @ self.items.T


class NumpyEase:
    """EASE from the paper's formula in float64 NumPy (``np.linalg.inv``), scoring x · B from the
    protocol's history like mfrec's: an independent implementation for the side by side."""

    def __init__(self, dataset, reg):
        X = np.zeros((dataset.n_users, dataset.n_movies), np.float64)
        X[np.asarray(dataset.train.user), np.asarray(dataset.train.movie)] = 1.0
        G = X.T @ X
        G[np.diag_indices_from(G)] += reg
        P = np.linalg.inv(G)
        self.B = P / (-np.diag(P))
        np.fill_diagonal(self.B, 0.0)

    def score_rows(self, indptr, indices, values, users):
        out = np.zeros((len(users), self.B.shape[0]), np.float32)
        for r, u in enumerate(np.asarray(users)):
            out[r] = self.B[indices[indptr[u]:indptr[u + 1]]].sum(axis=0)
        return out


class NumpyPopularity:
    def __init__(self, dataset):
        self.counts = np.bincount(np.asarray(dataset.train.movie), minlength=dataset.n_movies).astype(np.float32)

    def score_users(self, users):
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))


def implicit_matrix(dataset):
    import scipy.sparse as sp

    t = dataset.train
    return sp.csr_matrix((np.ones(len(t), np.float32), (np.asarray(t.user), np.asarray(t.movie))),
                         shape=(dataset.n_users, dataset.n_movies))


def fit(name: str, dataset, setting: dict, threads: int):
    """The fitted model of ``name`` with ``setting`` on ``dataset``'s train split, as the protocol scores it."""
    if name in ("mf", "mf-genre", "ials"):
        import mfrec

        return mfrec.train(dataset, {"model": name, "threads": threads, **setting})
    if name in ("ease", "ease-plain"):
        from mfrec.models.ease import EaseConfig, EaseModel

        plain = {"recency_boost": 0.0} if name == "ease-plain" else {}
        return EaseModel.fit(dataset, EaseConfig(**setting, **plain))
    if name == "popularity":
        from mfrec.evaluation.ranking import Popularity

        return Popularity.fit(dataset)
    if name == "numpy-ease":
        return NumpyEase(dataset, setting["reg"])
    if name == "numpy-popularity":
        return NumpyPopularity(dataset)
    import implicit

    X = implicit_matrix(dataset)
    if name == "implicit-als":
        model = implicit.cpu.als.AlternatingLeastSquares(factors=64, iterations=15, random_state=0,
                                                         num_threads=threads, **setting)
    else:
        model = implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, iterations=100, random_state=0,
                                                             num_threads=threads, **setting)
    model.fit(X, show_progress=False)
    return Factors(model.user_factors, model.item_factors)


def measure(name: str, dataset, setting: dict, target: str, threads: int) -> dict:
    from mfrec.evaluation.protocols import ranking_protocol

    t0 = time.perf_counter()
    model = fit(name, dataset, setting, threads)
    seconds = time.perf_counter() - t0
    res = ranking_protocol(model, dataset, k=K, target_split=target)
    return {**{m: res[m] for m in METRICS}, "fit_seconds": seconds, "users": res["users_evaluated"]}


def models_here() -> list[str]:
    from mfrec.models.config import MODEL_DEFAULTS, MODELS

    names = ["mf", "mf-genre"]
    if "ials" in MODELS:
        reg = float(MODEL_DEFAULTS["ials"]["reg"])
        GRIDS["ials"] = [{"reg": reg * f} for f in (0.25, 0.5, 1.0, 2.0)]
        names.append("ials")
    return names + ["ease", "ease-plain", "popularity", "implicit-als", "implicit-bpr", "numpy-ease", "numpy-popularity"]


def table(results: dict) -> str:
    head = ("| model | library | kept setting (val) | Hit@10 | NDCG@10 | Recall@10 | coverage@10 | fit s | "
            "best on test: Hit@10 / NDCG@10 (upper bound) |")
    lines = [head, "|" + "---|" * 9]
    order = sorted(results, key=lambda n: -results[n]["test"]["ndcg@10"])
    for n in order:
        r = results[n]
        t, ub = r["test"], r["best_on_test"]
        setting = ", ".join(f"{k} {v:g}" for k, v in r["kept"].items()) or "-"
        lines.append(f"| {n} | {r['library']} | {setting} | {t['hit@10']:.3f} | {t['ndcg@10']:.4f} | "
                     f"{t['recall@10']:.3f} | {t['coverage@10']:.3f} | {t['fit_seconds']:.2f} | "
                     f"{ub['hit@10']:.3f} / {ub['ndcg@10']:.4f} ({', '.join(f'{k} {v:g}' for k, v in ub['setting'].items()) or '-'}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a prepared user-last dataset (folder) with a val split")
    ap.add_argument("--models", nargs="*", default=None, help="a subset of the models (default: all there are)")
    ap.add_argument("--threads", type=int, default=0, help="threads for mfrec (Numba) and implicit (0 = all cores)")
    ap.add_argument("--out", default=str(RESULT))
    args = ap.parse_args(argv)

    from mfrec.data import load
    from mfrec.evaluation.protocols import require_user_last

    dataset = load(args.data)
    require_user_last(dataset)
    if dataset.val is None or len(dataset.val) == 0:
        raise SystemExit(f"{args.data} has no val split to tune on: prepare it with --val-fraction 0.1")
    refit = dataset.train_with_validation()  # the kept setting's refit: train + val, no val split
    names = models_here()
    if args.models:
        unknown = set(args.models) - set(names)
        if unknown:
            raise SystemExit(f"unknown model(s) {', '.join(sorted(unknown))}; choose from {', '.join(names)}")
        names = [n for n in names if n in args.models]
    results = {}
    for name in names:
        grid = GRIDS[name]
        for data in (dataset, refit):  # warm-up: Numba compiles once per array type (the view's are writable)
            fit(name, data, grid[0], args.threads)
        tuning = []
        for setting in grid:
            val = measure(name, dataset, setting, "val", args.threads)
            test = measure(name, refit, setting, "test", args.threads)  # the upper bound's data
            tuning.append({"setting": setting, "val": val, "test": test})
            print(f"{name:>16} {json.dumps(setting):>28}  val NDCG@10 {val['ndcg@10']:.4f}  "
                  f"(test {test['ndcg@10']:.4f}, fit {test['fit_seconds']:.1f} s)", flush=True)
        kept = max(tuning, key=lambda t: t["val"]["ndcg@10"])
        best = max(tuning, key=lambda t: t["test"]["ndcg@10"])
        results[name] = {"library": LIBRARY[name], "kept": kept["setting"], "val": kept["val"], "test": kept["test"],
                         "best_on_test": {"setting": best["setting"], **best["test"]}, "grid": tuning}
    import implicit
    import numba

    out = {
        "dataset": dataset.name, "data_path": str(Path(args.data).resolve()), "split": dataset.manifest.split,
        "n_users": dataset.n_users, "n_movies": dataset.n_movies,
        "protocol": ("tune: fit on train, rank val from the train history; test: refit the kept setting on "
                     "train + val, rank test from the train + val history; candidates every movie not in the "
                     "history; metrics mfrec.evaluation.ranking at k = 10"),
        "grids": {n: GRIDS[n] for n in names},
        "results": results,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "numba_threads": numba.get_num_threads(), "implicit": implicit.__version__,
                    "load_average": os.getloadavg()},
    }
    from mfrec.io import write_json

    write_json(args.out, out)
    print(table(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
