"""Seconds per ALS epoch (user half-step + movie half-step) of the mf model, by k and solver.

Runs the same kernel the models use (``mfrec.kernels.als.solve_rows``) on a prepared dataset and
times each half-step separately, after one untimed warm-up epoch (JIT compile, page faults of the
memory-mapped arrays). Writes ``benchmarks/results/als_epoch.json``.

    .venv/bin/python Data_processing.py --shape ml-25m --name synth-25m
    .venv/bin/python Data_processing.py --shape ml-1m --name synth-1m
    .venv/bin/python benchmarks/als_epoch.py --data synth-25m --k 16 32 64 128 --solvers cg cholesky
    .venv/bin/python benchmarks/als_epoch.py --ials --data synth-25m --k 64 --threads 2   # ials vs implicit

``--models mf mf-genre implicit-cg`` instead times whole epochs of the models side by side in one
process, on the same matrix, round robin (one epoch of each, then the next round), and writes the
per-round ratios to mf under ``"models"`` in the JSON:

    .venv/bin/python benchmarks/als_epoch.py --data synth-25m --k 64 --models mf mf-genre implicit-cg --epochs 5

``implicit-cg`` is implicit's CPU ``AlternatingLeastSquares`` (conjugate gradient, its default 3 steps, the
ratings as confidences; ``pip install implicit``, for the benchmark only), timed by the seconds its
callback reports for the iteration (fit's per-call transpose and initialisation left out). A model is one entry of
``MODEL_EPOCH``: a function (dataset, k) -> a callable that runs one epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def commit() -> str | None:
    """The repository's HEAD commit (None outside a git checkout)."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


LIKE_FOR_LIKE = ("same k, same CG steps (3), same threads, float32 factors, single-threaded BLAS for implicit: "
                 "implicit's CPU CG (implicit/cpu/_als.pyx least_squares_cg) warm-starts each row, runs up to "
                 "cg_steps unpreconditioned steps with BLAS dot/axpy per positive, gathering Y's rows on every "
                 "step, OpenMP guided schedule; mfrec (mfrec.kernels.als.cg_solve) warm-starts, runs cg_steps "
                 "Jacobi-preconditioned steps over the row's Y rows gathered once, four rows per pass, static "
                 "round-robin rows per thread")


def bench(ds, k: int, solver: str, cg_steps: int, epochs: int, seed: int = 0) -> dict:
    from mfrec.kernels.als import solve_rows

    rng = np.random.default_rng(seed)
    P = (rng.standard_normal((ds.n_users, k)) * 0.1).astype(np.float32)
    Q = (rng.standard_normal((ds.n_movies, k)) * 0.1).astype(np.float32)
    bu = np.zeros(ds.n_users, np.float32)
    bi = np.zeros(ds.n_movies, np.float32)
    mu = float(np.mean(ds.train.rating, dtype=np.float64))
    u, m = ds.train_by_user, ds.train_by_movie
    common = dict(reg=0.08, reg_bias=10.0, weighted=True, solver=solver, cg_steps=cg_steps)
    import resource

    users_s, movies_s, cpu_s, sys_s, faults = [], [], [], [], []
    for epoch in range(epochs + 1):  # epoch 0: warm-up, not timed
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = time.process_time()
        t0 = time.perf_counter()
        solve_rows(u.indptr, u.indices, u.values, Q, bi, mu, out_factors=P, out_bias=bu, what="user", **common)
        t1 = time.perf_counter()
        solve_rows(m.indptr, m.indices, m.values, P, bu, mu, out_factors=Q, out_bias=bi, what="movie", **common)
        t2 = time.perf_counter()
        if epoch:
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu_s.append(time.process_time() - c0)
            sys_s.append(ru1.ru_stime - ru0.ru_stime)
            faults.append(ru1.ru_majflt - ru0.ru_majflt)
            users_s.append(t1 - t0)
            movies_s.append(t2 - t1)
    epoch_s = [a + b for a, b in zip(users_s, movies_s)]
    from mfrec.kernels.predict import error_sums

    sq, _ = error_sums(ds.train.user, ds.train.movie, ds.train.rating, mu, bu, bi, P, Q)
    return {
        "k": k, "solver": solver, "cg_steps": cg_steps if solver == "cg" else None, "epochs_timed": epochs,
        "seconds_per_epoch": statistics.median(epoch_s), "seconds_per_epoch_min": min(epoch_s),
        "seconds_per_epoch_max": max(epoch_s),
        "user_half_step_s": statistics.median(users_s), "movie_half_step_s": statistics.median(movies_s),
        "epoch_seconds": epoch_s, "cpu_seconds_per_epoch": statistics.median(cpu_s),
        "system_cpu_seconds_per_epoch": statistics.median(sys_s), "major_page_faults_per_epoch": statistics.median(faults), "train_rmse_after": float(np.sqrt(sq / len(ds.train))),
        "loadavg_after": loadavg(),
    }


def _mf_epoch(ds, k: int, genre: bool):
    """One epoch of mf / mf-genre exactly as ``mfrec.models.als.fit`` runs it (cg, 3 steps)."""
    from mfrec.kernels.als import check_ratings_csr, genre_part, solve_rows
    from mfrec.kernels.genre import genre_index, solve_genre_factors

    rng = np.random.default_rng(0)
    P = (rng.standard_normal((ds.n_users, k)) * 0.1).astype(np.float32)
    Q = (rng.standard_normal((ds.n_movies, k)) * 0.1).astype(np.float32)
    bu, bi = np.zeros(ds.n_users, np.float32), np.zeros(ds.n_movies, np.float32)
    mu = float(np.mean(ds.train.rating, dtype=np.float64))
    u, m, gc = ds.train_by_user, ds.train_by_movie, ds.movie_genres
    check_ratings_csr(u.indptr, u.indices, ds.n_movies)
    check_ratings_csr(m.indptr, m.indices, ds.n_users)
    common = dict(reg=0.08, reg_bias=10.0, weighted=True, solver="cg", cg_steps=3, validate=False)
    n_g = len(ds.genres)
    st = {"Y": np.zeros((n_g, k), np.float32), "G": np.zeros((ds.n_movies, k), np.float32)}
    if genre:
        index = genre_index(gc.indptr, gc.indices, n_g, (u.indptr, u.indices, u.values))
        R = np.empty((ds.n_movies, k), np.float32)

    def epoch() -> dict:
        G = st["G"]
        solve_rows(u.indptr, u.indices, u.values, Q + G if genre else Q, bi, mu, out_factors=P, out_bias=bu,
                   what="user", **common)
        solve_rows(m.indptr, m.indices, m.values, P, bu, mu, out_factors=Q, out_bias=bi, what="movie",
                   row_shift=G if genre else None, out_residual=R if genre else None, **common)
        info: dict = {}
        if genre:
            st["Y"] = solve_genre_factors(index, (u.indptr, u.indices, u.values), mu, bu, bi, P, Q, reg=0.08,
                                          y0=st["Y"], movie_residual=R, max_iter=common["cg_steps"], stats=info)
            st["G"] = genre_part(gc.indptr, gc.indices, st["Y"])
        return info

    return epoch


def _implicit_cg_epoch(ds, k: int):
    """One iteration of implicit's CPU ALS with conjugate gradient on the same ratings (as confidences)."""
    import scipy.sparse
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    u = ds.train_by_user
    X = scipy.sparse.csr_matrix((np.array(u.values, np.float32), np.array(u.indices), np.array(u.indptr)),
                                shape=(ds.n_users, ds.n_movies))
    model = AlternatingLeastSquares(factors=k, iterations=1, use_cg=True, calculate_training_loss=False,
                                    random_state=0)

    def epoch() -> dict:
        # a fit of one iteration; its time is the one implicit's callback reports: the two half-steps,
        # without fit's per-call transpose of the matrix and random initialisation
        took: list[float] = []
        with threadpool_limits(1, "blas"):  # implicit's own advice: its threads, single-threaded BLAS
            model.fit(X, show_progress=False, callback=lambda it, elapsed, loss: took.append(elapsed))
        return {"seconds": took[0]}

    return epoch


MODEL_EPOCH = {
    "mf": lambda ds, k: _mf_epoch(ds, k, genre=False),
    "mf-genre": lambda ds, k: _mf_epoch(ds, k, genre=True),
    "implicit-cg": _implicit_cg_epoch,
}


def bench_models(ds, k: int, models: list[str], epochs: int) -> dict:
    """Seconds per epoch of each model, round robin in one process; ratios to mf per round, medians."""
    runs = {name: MODEL_EPOCH[name](ds, k) for name in models}
    for run in runs.values():  # warm-up: JIT compile, page faults, implicit's first fit
        run()
    seconds: dict[str, list[float]] = {name: [] for name in models}
    extra: dict[str, list[dict]] = {name: [] for name in models}
    load = []
    for _ in range(epochs):
        for name, run in runs.items():
            t0 = time.perf_counter()
            info = run()
            # a peer that reports its own epoch time (implicit: without fit's set-up) is timed by it
            seconds[name].append(info.pop("seconds", time.perf_counter() - t0))
            extra[name].append(info)
        load.append(loadavg())
    out = {"k": k, "epochs_timed": epochs, "commit": commit(), "compared": LIKE_FOR_LIKE, "seconds": seconds,
           "median_seconds": {
        n: statistics.median(v) for n, v in seconds.items()}, "info": extra, "loadavg_per_round": load}
    if "mf" in seconds:
        out["median_ratio_to_mf"] = {n: statistics.median(a / b for a, b in zip(v, seconds["mf"]))
                                     for n, v in seconds.items() if n != "mf"}
    return out


def bench_ials_vs_implicit(ds, k: int = 64, cg_steps: int = 3, epochs: int = 3, threads: int = 2, seed: int = 0) -> dict:
    """Seconds per ials epoch (mfrec.kernels.ials, CG) beside implicit's CPU CG ALS on the same confidence matrix.

    Both get ``threads`` threads, ``cg_steps`` CG steps and k factors. The epochs alternate, one of
    mfrec then one of implicit (``fit`` with one iteration, which continues from its factors; the
    time is the one its callback reports, the two half-steps without the per-call transpose), so a
    change in the machine's load hits both alike; round 0 (JIT compile, first touch) is not timed.
    The figures are the medians over ``epochs`` rounds, and the median of the per-round ratios.
    implicit (``pip install implicit``) is a benchmark peer only, never a dependency. Peak RSS is the
    process's high-water mark after mfrec's warm-up round (data and mfrec) and at the end.
    """
    import resource

    import numba
    import scipy.sparse as sp

    from mfrec.kernels.ials import gramian, solve_implicit_rows
    from mfrec.models.confidence import confidences

    numba.set_num_threads(threads)
    top = float(ds.rating_scale[1])
    u, m = ds.train_by_user, ds.train_by_movie
    uconf = confidences(u.values, top, alpha=1.0, power=1.0)
    mconf = confidences(m.values, top, alpha=1.0, power=1.0)
    rng = np.random.default_rng(seed)
    P = (rng.standard_normal((ds.n_users, k)) * 0.1 / np.sqrt(k)).astype(np.float32)
    Q = (rng.standard_normal((ds.n_movies, k)) * 0.1 / np.sqrt(k)).astype(np.float32)
    common = dict(reg=0.01, alpha0=1.0, nu=0.0, solver="cg", cg_steps=cg_steps)

    def ours() -> float:
        t0 = time.perf_counter()
        solve_implicit_rows(m.indptr, m.indices, mconf, P, gram=gramian(P, 1.0), out_factors=Q, what="movie", **common)
        solve_implicit_rows(u.indptr, u.indices, uconf, Q, gram=gramian(Q, 1.0), out_factors=P, what="user", **common)
        return time.perf_counter() - t0

    try:
        import implicit
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
    except ImportError as e:
        peer_model, why = None, f"implicit is not installed ({e}); pip install implicit threadpoolctl"
    else:
        user_items = sp.csr_matrix((uconf.copy(), np.array(u.indices, np.int32), np.array(u.indptr, np.int64)),
                                   shape=(ds.n_users, ds.n_movies))
        peer_model = AlternatingLeastSquares(factors=k, regularization=0.01, alpha=1.0, use_cg=True, use_native=True,
                                             iterations=1, calculate_training_loss=False, num_threads=threads,
                                             random_state=seed)
        peer_model.cg_steps = cg_steps

    def theirs() -> float:
        took: list[float] = []
        with threadpool_limits(1, "blas"):  # implicit's own advice: its threads, not BLAS's
            peer_model.fit(user_items, show_progress=False, callback=lambda it, elapsed, loss: took.append(elapsed))
        return took[0]

    ours_s, theirs_s = [], []
    rss_ours = None
    for rnd in range(epochs + 1):  # round 0: warm-up, not timed
        a = ours()
        if rnd == 0:
            rss_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        b = theirs() if peer_model is not None else None
        if rnd:
            ours_s.append(a)
            if b is not None:
                theirs_s.append(b)
    out = {"k": k, "cg_steps": cg_steps, "threads": threads, "epochs_timed": epochs, "commit": commit(),
           "compared": LIKE_FOR_LIKE,
           "mfrec_ials_seconds_per_epoch": statistics.median(ours_s), "mfrec_epoch_seconds": ours_s,
           "mfrec_peak_rss_mb": rss_ours, "peak_rss_mb_end": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "loadavg_after": loadavg()}
    if peer_model is None:
        out["implicit"] = {"available": False, "why": why}
    else:
        out["implicit"] = {"available": True, "version": implicit.__version__,
                           "seconds_per_epoch": statistics.median(theirs_s), "epoch_seconds": theirs_s}
        out["speedup_vs_implicit"] = statistics.median(theirs_s) / statistics.median(ours_s)
        out["speedup_per_round_median"] = statistics.median(b / a for a, b in zip(ours_s, theirs_s))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["synth-25m"], help="prepared datasets (names or paths)")
    ap.add_argument("--k", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--solvers", nargs="+", default=["cg", "cholesky"])
    ap.add_argument("--cg-steps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per setting (after one warm-up)")
    ap.add_argument("--models", nargs="+", choices=sorted(MODEL_EPOCH),
                    help="time these models' whole epochs side by side instead of the half-step solvers")
    ap.add_argument("--cholesky-max-k", type=int, default=64, help="skip Cholesky above this k on >5M ratings")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "als_epoch.json"))
    ap.add_argument("--ials", action="store_true",
                    help="instead: the ials epoch (CG) beside implicit's CPU CG ALS at each --k, with --threads "
                         "threads; writes results/ials_epoch.json")
    ap.add_argument("--threads", type=int, default=2, help="--ials: threads for both libraries")
    args = ap.parse_args()
    if args.ials:
        return main_ials(args)

    import numba

    import mfrec.data

    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.setdefault("runs", [])
    results["machine"] = {
        "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(), "platform": platform.platform(),
        "processor": platform.processor(), "note": "noisy shared VM: compare figures together with the load averages recorded beside them",
    }
    for name in args.data:
        ds = mfrec.data.load(name)
        if args.models:
            results.setdefault("models", [])
            for k in args.k:
                before = loadavg()
                r = bench_models(ds, k, args.models, args.epochs)
                r.update(dataset=ds.name, n_users=ds.n_users, n_movies=ds.n_movies, n_train=len(ds.train),
                         loadavg_before=before, when=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                results["models"] = [x for x in results["models"] if not (x["dataset"] == ds.name and x["k"] == k)]
                results["models"].append(r)
                print(f"{ds.name} k={k}: " + ", ".join(f"{n} {v:.2f} s" for n, v in r["median_seconds"].items())
                      + f"; ratio to mf {r.get('median_ratio_to_mf')} load {before}", flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=2) + "\n")
            continue
        for k in args.k:
            for solver in args.solvers:
                if solver == "cholesky" and len(ds.train) > 5_000_000 and k > args.cholesky_max_k:
                    continue
                before = loadavg()
                r = bench(ds, k, solver, args.cg_steps, args.epochs if solver == "cg" or len(ds.train) < 5e6 else 1)
                r.update(dataset=ds.name, n_users=ds.n_users, n_movies=ds.n_movies, n_train=len(ds.train),
                         loadavg_before=before, when=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                results["runs"] = [x for x in results["runs"]
                                   if not (x["dataset"] == ds.name and x["k"] == k and x["solver"] == solver)]
                results["runs"].append(r)
                print(f"{ds.name} k={k:<4} {solver:<8} {r['seconds_per_epoch']:8.2f} s/epoch "
                      f"(users {r['user_half_step_s']:.2f} s, movies {r['movie_half_step_s']:.2f} s, "
                      f"CPU {r['cpu_seconds_per_epoch']:.2f} s, sys {r['system_cpu_seconds_per_epoch']:.2f} s, "
                      f"major faults {r['major_page_faults_per_epoch']}) "
                      f"train RMSE {r['train_rmse_after']:.4f} load {before}", flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=2) + "\n")


def main_ials(args) -> None:
    import mfrec.data

    out = Path(args.out).with_name("ials_epoch.json") if Path(args.out).name == "als_epoch.json" else Path(args.out)
    runs = []
    for name in args.data:
        ds = mfrec.data.load(name)
        for k in args.k:
            before = loadavg()
            r = bench_ials_vs_implicit(ds, k, args.cg_steps, args.epochs, args.threads)
            r.update(dataset=ds.name, n_users=ds.n_users, n_movies=ds.n_movies, n_train=len(ds.train),
                     loadavg_before=before, when=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            runs.append(r)
            peer = r["implicit"]
            print(f"{ds.name} k={k}: mfrec ials {r['mfrec_ials_seconds_per_epoch']:.2f} s/epoch "
                  f"(peak RSS {r['mfrec_peak_rss_mb']:.0f} MB)"
                  + (f", implicit {peer['seconds_per_epoch']:.2f} s/epoch: {r['speedup_vs_implicit']:.2f}x faster "
                        f"(median of per-round ratios {r['speedup_per_round_median']:.2f}x)"
                     if peer["available"] else f"; {peer['why']}") + f", load {before}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
                               "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
