"""One machine against the Dask engine: seconds per epoch, bytes moved between workers, peak memory.

Trains the same ALS model (default mf, k = 32, cg, no early stopping) on a prepared dataset three
ways in this process's session: ``mfrec.models.als.fit`` (one machine), then ``fit_dask`` on a
LocalCluster of 1 and of 2 worker processes (each with the machine's cores shared among its
workers as Numba threads). The first epoch of each is left out of the mean (page faults of the
memory-mapped arrays; the kernels are compiled on every worker before timing). For each Dask run
it records the bytes the workers received from one another per epoch (Dask's transfer log)
against the formula, and each worker's peak RSS. Writes ``benchmarks/results/dask_epoch.json``.

    .venv/bin/python Data_processing.py --shape ml-10m --split random --val-fraction 0.05 --name synth-10m
    .venv/bin/python benchmarks/dask_epoch.py --data synth-10m

The formula, with W workers each owning 1/W of the users and of the movies: per epoch every worker
receives the movie shards it does not own ((W-1)/W * n_movies * (k+1) float32, plus the genre part
n_movies * k for mf-genre) and the user shards it does not own ((W-1)/W * n_users * (k+1)), so in
total (W-1) * (n_users + n_movies) * (k+1) * 4 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

# threadpoolctl, installed here with the implicit peer (never with mfrec), lets mfrec count OpenBLAS's
# threads and warn that BLAS x Numba threads oversubscribe the cores; the BLAS calls of these runs
# come between the Numba-parallel half-steps, not inside them, so the warning is noise here
warnings.filterwarnings("ignore", message=r".* BLAS threads x .* Numba threads oversubscribe")


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def formula_bytes(n_users: int, n_movies: int, k: int, workers: int, genre: bool) -> float:
    per_side = (n_users + n_movies) * (k + 1) + (n_movies * k if genre else 0)
    return float((workers - 1) * per_side * 4)


def mean_after_first(seconds: list[float]) -> float:
    return float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="prepared dataset (name under --data-root, or a folder)")
    ap.add_argument("--data-root", default="Training_data")
    ap.add_argument("--model", default="mf", choices=["bias", "mf", "mf-genre"])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "dask_epoch.json"))
    args = ap.parse_args()

    from mfrec.data import load
    from mfrec.experiments.run import peak_rss_mb
    from mfrec.models.als import fit
    from mfrec.models.config import ALSConfig
    from mfrec.models.dask_als import close_client, dask_client, fit_dask

    ds = load(args.data, data_root=args.data_root)
    cores = os.cpu_count() or 1
    config = ALSConfig.for_model(args.model, factors=args.k, epochs=args.epochs, patience=0, threads=cores)
    k = config.k
    result = {
        "dataset": ds.name, "n_users": ds.n_users, "n_movies": ds.n_movies, "n_train": len(ds.train),
        "model": args.model, "k": k, "solver": config.solver, "epochs": args.epochs, "cores": cores,
        "machine": platform.machine(), "python": platform.python_version(), "loadavg_start": loadavg(),
        "note": "mean seconds per epoch without the first epoch; Dask runs on a LocalCluster on the same machine",
        "runs": [],
    }
    t0 = time.perf_counter()
    local = fit(ds, config)
    single = mean_after_first([r.seconds for r in local.history])
    # the fits never read the test split; it is evaluated once, on each kept model
    local_test = local.evaluate(ds.test)["rmse"] if ds.test is not None and len(ds.test) else None
    result["runs"].append({"engine": "single machine", "workers": None, "seconds_per_epoch": single,
                           "epoch_seconds": [r.seconds for r in local.history], "wall_seconds": time.perf_counter() - t0,
                           "test_rmse": local_test, "peak_rss_mb": peak_rss_mb()})
    print(f"single machine: {single:.2f} s/epoch, test RMSE {local_test}", flush=True)
    for w in args.workers:
        client = dask_client(workers=w)
        try:
            t0 = time.perf_counter()
            model = fit_dask(ds, config.replace(threads=max(1, cores // w)), client)
            wall = time.perf_counter() - t0
        finally:
            close_client(client)
        secs = mean_after_first([r.seconds for r in model.history])
        test = model.evaluate(ds.test)["rmse"] if local_test is not None else None
        moved = model.config["bytes_between_workers_per_epoch"]
        run = {"engine": "dask", "workers": w, "blocks": model.config["dask_blocks"],
               "numba_threads_per_worker": model.config["numba_threads"], "seconds_per_epoch": secs,
               "epoch_seconds": [r.seconds for r in model.history], "wall_seconds": wall,
               "overhead_vs_single": secs / single - 1.0,
               "bytes_between_workers_per_epoch": moved,
               "formula_bytes_per_epoch": formula_bytes(ds.n_users, ds.n_movies, k, w, args.model == "mf-genre"),
               "worker_peak_rss_mb": model.config["worker_peak_rss_mb"],
               "test_rmse": test,
               "test_rmse_minus_single": test - local_test if test is not None else None}
        result["runs"].append(run)
        print(f"dask {w} workers: {secs:.2f} s/epoch ({run['overhead_vs_single']:+.0%}), "
              f"{moved / 1e6:.1f} MB moved per epoch (formula {run['formula_bytes_per_epoch'] / 1e6:.1f} MB), "
              f"worker peak RSS {', '.join(f'{v:.0f}' for v in run['worker_peak_rss_mb'].values())} MB", flush=True)
    result["loadavg_end"] = loadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
