"""mfrec's Gibbs-sampled Bayesian MF (``--model bayes``) against myFM on the same splits.

    python benchmarks/bayes_vs_myfm.py --data-root /tmp/bayes-data --datasets ml-100k-u1,ml-100k-u2 \
        --ranks 10 --samples 200 --libraries mfrec,myfm --features mf,svdpp-flipped [--out NAME]

Timing: per (dataset, rank, features), both libraries are fitted in this one process, round robin
(``--rounds`` rounds of mfrec then myFM), and the medians of the per-round seconds per sample and
of the per-round ratios myFM / mfrec are reported, with the load average before and after. Peak
RSS: one more fit per library in its own child process (its ``VmHWM``), unless ``--no-rss``;
``--rss-only`` runs just those (untimed) into an existing JSON. Both libraries get the same training and test ratings (the mfrec prepared dataset's
train and test splits) and the same number of samples and burn-in; mfrec runs on all cores
(Numba's threads), myFM on one (it has no threads option). Features:
``mf`` = user and movie ids only; ``svdpp-flipped`` = plus each user's rated movies and each
movie's raters as implicit groups (|N|^-1/2 weights, training ratings only: myFM's "stricter
protocol"; myFM's own best ML-100k example also adds the rating date, which mfrec does not model).
RMSE/MAE are of the posterior-mean prediction clipped to the rating scale. Seconds per sample are
the fit's wall time / samples (mfrec: after a warm-up fit, so that Numba's cache is loaded).
Feature ``default`` is mfrec's ``BayesConfig()`` as it ships, time-aware biases included (myFM
gets ``svdpp-flipped``); ``mf`` and ``svdpp-flipped`` are the same model in both libraries.
myFM is a benchmark-only peer: ``pip install myfm``. Writes ``benchmarks/results/<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _load(data_root: str, name: str):
    import mfrec

    return mfrec.data.load(name, data_root=data_root)


def _errors(pred, truth) -> tuple[float, float]:
    import numpy as np

    e = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean(e * e))), float(np.mean(np.abs(e)))


def _mfrec_config(rank: int, samples: int, burn_in: int, features: str):
    from mfrec.models.bayes import BayesConfig

    cfg = BayesConfig(factors=rank, samples=samples, burn_in=burn_in, stored_samples=0)
    if features != "default":
        implicit = features == "svdpp-flipped"
        cfg = cfg.replace(implicit_user=implicit, implicit_movie=implicit, time_bias=False)
    return cfg


def run_mfrec(ds, rank: int, samples: int, burn_in: int, features: str, warm: bool = False) -> dict:
    import numba
    import numpy as np

    from mfrec.models.bayes import fit

    cfg = _mfrec_config(rank, samples, burn_in, features)
    if not warm:
        fit(ds, cfg.replace(samples=2, burn_in=1))  # warm-up: Numba's cached kernels loaded
    t0 = time.perf_counter()
    model = fit(ds, cfg)
    seconds = time.perf_counter() - t0
    pred = model.posterior_predictions["test"]
    rmse, mae = _errors(pred, ds.test.rating)
    sweeps = [r.seconds for r in model.history]
    return {"rmse": rmse, "mae": mae, "seconds": seconds, "seconds_per_sample": seconds / samples,
            "median_sweep_seconds": float(np.median(sweeps)), "mean_factor_rmse": model.evaluate(ds.test)["rmse"],
            "threads": numba.get_num_threads()}


def _myfm_blocks(ds, implicit: bool):
    import numpy as np
    import scipy.sparse as sps
    from myfm import RelationBlock

    nu, nm = ds.n_users, ds.n_movies
    u_csr, m_csr = ds.train_by_user, ds.train_by_movie

    def side(n, csr, n_other):
        eye = sps.identity(n, format="csr", dtype=np.float64)
        if not implicit:
            return eye
        counts = np.diff(np.asarray(csr.indptr))
        w = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
        imp = sps.csr_matrix((w, np.asarray(csr.indices), np.asarray(csr.indptr)), shape=(n, n_other))
        return sps.hstack([eye, imp], format="csr")

    U, M = side(nu, u_csr, nm), side(nm, m_csr, nu)
    grouping = ([0] * nu + ([1] * nm if implicit else []) + [2] * nm + ([3] * nu if implicit else []))
    blocks = {}
    for name, split in (("train", ds.train), ("test", ds.test)):
        blocks[name] = [RelationBlock(np.asarray(split.user, np.int64), U),
                        RelationBlock(np.asarray(split.movie, np.int64), M)]
    # compact the group ids (myFM wants 0..G-1)
    ids = {g: i for i, g in enumerate(sorted(set(grouping)))}
    return blocks, [ids[g] for g in grouping]


def run_myfm(ds, rank: int, samples: int, burn_in: int, features: str, warm: bool = False) -> dict:
    import numpy as np
    import myfm

    blocks, grouping = _myfm_blocks(ds, features != "mf")
    fm = myfm.MyFMRegressor(rank=rank, random_seed=42)
    t0 = time.perf_counter()
    fm.fit(None, np.asarray(ds.train.rating, np.float64), X_rel=blocks["train"], grouping=grouping, n_iter=samples,
           n_kept_samples=samples - burn_in)
    seconds = time.perf_counter() - t0
    lo, hi = ds.rating_scale
    pred = np.clip(fm.predict(None, X_rel=blocks["test"]), lo, hi)
    rmse, mae = _errors(pred, ds.test.rating)
    return {"rmse": rmse, "mae": mae, "seconds": seconds, "seconds_per_sample": seconds / samples,
            "myfm_version": getattr(myfm, "__version__", "?"), "threads": 1}


RUNNERS = {"mfrec": run_mfrec, "myfm": run_myfm}


def _loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def one(spec: dict) -> dict:
    """One fit of one library in this (child) process: its result and its peak RSS."""
    ds = _load(spec["data_root"], spec["dataset"])
    out = RUNNERS[spec["library"]](ds, spec["rank"], spec["samples"], spec["burn_in"], spec["features"])
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report the parent's peak
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    out["peak_rss_mb"] = int(status["VmHWM"].split()[0]) / 1024
    return out


def timed(spec: dict, libraries: list[str], rounds: int) -> list[dict]:
    """Round robin in this process: ``rounds`` x (each library once); medians per library and the
    median of the per-round ratios of seconds per sample (other library / mfrec)."""
    import statistics

    ds = _load(spec["data_root"], spec["dataset"])
    args = (ds, spec["rank"], spec["samples"], spec["burn_in"])
    if "mfrec" in libraries:
        run_mfrec(*args, spec["features"])  # warm-up
    per: dict[str, list[dict]] = {lib: [] for lib in libraries}
    load_before = _loadavg()
    for r in range(rounds):
        for lib in libraries:
            res = RUNNERS[lib](*args, spec["features"], warm=True)
            per[lib].append(res)
            print(f"    round {r + 1}/{rounds} {lib:6s} RMSE {res['rmse']:.4f}  {res['seconds_per_sample']:.4f} s/sample",
                  flush=True)
    load_after = _loadavg()
    out = []
    for lib in libraries:
        runs = per[lib]
        row = {**spec, "library": lib, **runs[-1],
               "seconds_per_sample": statistics.median(x["seconds_per_sample"] for x in runs),
               "seconds": statistics.median(x["seconds"] for x in runs),
               "round_seconds_per_sample": [x["seconds_per_sample"] for x in runs], "rounds": rounds,
               "loadavg_before": load_before, "loadavg_after": load_after, "n_train": len(ds.train),
               "n_test": len(ds.test)}
        if lib != "mfrec" and "mfrec" in per:
            row["times_mfrec"] = statistics.median(
                o["seconds_per_sample"] / m["seconds_per_sample"] for o, m in zip(runs, per["mfrec"]))
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--datasets", required=True, help="comma-separated prepared dataset names")
    ap.add_argument("--ranks", default="10")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=5)
    ap.add_argument("--libraries", default="mfrec,myfm")
    ap.add_argument("--features", default="mf,svdpp-flipped")
    ap.add_argument("--out", default="bayes_vs_myfm")
    ap.add_argument("--rounds", type=int, default=3, help="round-robin rounds of the timing (medians reported)")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS fits in child processes")
    ap.add_argument("--rss-only", action="store_true",
                    help="only the peak-RSS fits (untimed), written into the rows already in the JSON")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.out}.json"
    results = json.loads(path.read_text())["results"] if path.is_file() else []
    libraries = args.libraries.split(",")
    specs = [{"data_root": args.data_root, "dataset": d, "rank": int(r), "features": f, "samples": args.samples,
              "burn_in": args.burn_in}
             for d in args.datasets.split(",") for r in args.ranks.split(",") for f in args.features.split(",")]
    key = ("dataset", "library", "rank", "features", "samples")
    for n, spec in enumerate(specs, 1):
        print(f"[{n}/{len(specs)}] {spec['dataset']} k={spec['rank']} {spec['features']} ({spec['samples']} samples, "
              f"{args.rounds} rounds of {', '.join(libraries)}, load {_loadavg()[0]:.1f}) ...", flush=True)
        if args.rss_only:
            rows = [r for r in results if all(r.get(k) == spec[k] for k in ("dataset", "rank", "features", "samples"))]
        else:
            rows = timed(spec, libraries, args.rounds)
        for row in rows:
            if not args.no_rss:
                child = {**spec, "library": row["library"]}
                proc = subprocess.run([sys.executable, __file__, "--data-root", args.data_root, "--datasets",
                                       spec["dataset"], "--one", json.dumps(child)], capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"the {row['library']} fit for peak RSS failed (exit {proc.returncode})")
                row["peak_rss_mb"] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]
            results = [r for r in results if tuple(r.get(k) for k in key) != tuple(row[k] for k in key)] + [row]
            ratio = f"  ({row['times_mfrec']:.2f}x mfrec's time)" if "times_mfrec" in row else ""
            rss = f"  peak RSS {row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else ""
            print(f"    {row['library']:6s} RMSE {row['rmse']:.4f}  MAE {row['mae']:.4f}  "
                  f"{row['seconds_per_sample']:.4f} s/sample{ratio}{rss}", flush=True)
        path.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
