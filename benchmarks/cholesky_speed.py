"""The exact (Cholesky) ALS half-step against the kernel as it was when issue 13 was filed, in one process.

The baseline, ``filed_cholesky_half_step`` below, is the Cholesky path of
``src/mfrec/kernels/als.py`` at commit ea43860 (the last one before the first speed-up, c316a5f),
kept here, for this benchmark only: per rating, a float64 rank-1 update of the (k+1)^2 upper
triangle, then an unblocked Cholesky and two substitutions, four row blocks per thread. The new
solver is ``mfrec.kernels.als.solve_rows(..., solver="cholesky")`` (``mfrec.kernels.exact``).

A baseline epoch of the 25M-rating dataset takes minutes, so the ratio is timed on a fixed sample
of rows that includes the long ones: every ``--every``-th user and movie plus the ``--longest``
longest of each side (the most-rated movies cost the most), each side against fixed factors of the
full dataset, so the rows are exactly those of an epoch. Round robin, one untimed warm-up round
(JIT compile, first touch): a round times the baseline, then the new solver, on both samples;
the figures are medians, the ratio the median of per-round ratios (of wall seconds, and of the
process's CPU seconds, which a loaded machine disturbs less). Both solve the same equations:
the largest difference of their factors is reported. Then ``--epochs`` full epochs (user and movie
half-step) of the new solver on the whole dataset; ``--full-baseline`` adds one full baseline epoch.

Also timed on the sample, for the record (``--blas``): the same exact solve with the Gram by BLAS
(``np.dot`` on float64 gathered chunks, i.e. ``dgemm`` through SciPy's OpenBLAS, which forms the
full square) and the Cholesky of ``mfrec.kernels.exact``, with OpenBLAS left at its thread count
and pinned to one thread (threadpoolctl, a benchmark-only import).

    flock /tmp/mfrec-bench.lock .venv/bin/python benchmarks/cholesky_speed.py --data synth-25m --k 64

Writes ``benchmarks/results/cholesky_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from mfrec.kernels.exact import cholesky_upper, solve_lower_t, solve_upper

FASTMATH = {"reassoc", "contract"}


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


# -- the baseline: the Cholesky half-step as filed (ea43860), no shift, weighted lambda -------------
@njit(cache=True, fastmath=FASTMATH)
def _filed_solve_row(start, end, indices, values, fixed, fixed_bias, mu, lam, lam_b, r, out_factors, out_bias, A,
                     rhs):
    k = fixed.shape[1]
    m = k + 1
    A[:, :] = 0.0
    rhs[:] = 0.0
    for jj in range(start, end):
        c = indices[jj]
        t = values[jj] - mu - fixed_bias[c]
        A[0, 0] += 1.0
        rhs[0] += t
        for a in range(k):
            ya = np.float64(fixed[c, a])
            A[0, a + 1] += ya
            rhs[a + 1] += t * ya
            for b in range(a, k):
                A[a + 1, b + 1] += ya * fixed[c, b]
    A[0, 0] += lam_b
    for a in range(1, m):
        A[a, a] += lam
    for j in range(m):  # in-place upper Cholesky A = R^T R
        s = A[j, j]
        for p in range(j):
            s -= A[p, j] * A[p, j]
        if not (s > 0.0) or not np.isfinite(s):
            return 1
        d = np.sqrt(s)
        A[j, j] = d
        for i in range(j + 1, m):
            s = A[j, i]
            for p in range(j):
                s -= A[p, j] * A[p, i]
            A[j, i] = s / d
    for i in range(m):  # R^T y = rhs, then R z = y
        s = rhs[i]
        for p in range(i):
            s -= A[p, i] * rhs[p]
        rhs[i] = s / A[i, i]
    for i in range(m - 1, -1, -1):
        s = rhs[i]
        for p in range(i + 1, m):
            s -= A[i, p] * rhs[p]
        rhs[i] = s / A[i, i]
    for i in range(m):
        if not np.isfinite(rhs[i]):
            return 2
    out_bias[r] = rhs[0]
    for a in range(k):
        out_factors[r, a] = rhs[a + 1]
    return 0


@njit(cache=True, parallel=True)
def _filed_half_step(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, reg_exponent, work64,
                     out_factors, out_bias, status):
    n_rows = indptr.shape[0] - 1
    k = fixed.shape[1]
    n_blocks = work64.shape[0]
    mu32 = np.float32(mu)
    for blk in prange(n_blocks):
        A = work64[blk, :k + 1, :]
        rhs = work64[blk, k + 1, :]
        for r in range(blk, n_rows, n_blocks):
            start = indptr[r]
            end = indptr[r + 1]
            if end == start:
                out_bias[r] = 0.0
                for a in range(k):
                    out_factors[r, a] = 0.0
                continue
            lam = reg * np.float64(end - start) ** reg_exponent
            status[r] = _filed_solve_row(start, end, indices, values, fixed, fixed_bias, mu32, lam, np.float64(reg_bias),
                                         r, out_factors, out_bias, A, rhs)


def filed_cholesky_half_step(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, reg_exponent, out_f, out_b):
    """The Cholesky half-step as filed (ea43860): four row blocks per thread, as it allocated them."""
    k = fixed.shape[1]
    n_rows = len(indptr) - 1
    n_blocks = max(1, min(n_rows, 4 * numba.get_num_threads()))
    status = np.zeros(n_rows, np.int8)
    _filed_half_step(indptr, indices, values, fixed, fixed_bias, float(mu), float(reg), float(reg_bias),
                     float(reg_exponent), np.zeros((n_blocks, k + 2, k + 1)), out_f, out_b, status)
    if status.any():
        raise RuntimeError(f"the filed Cholesky failed on {np.count_nonzero(status)} rows")


# -- for the record: the Gram by BLAS (dgemm on gathered float64 chunks) ---------------------------
@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _blas_half_step(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, reg_exponent, X, T, G, S, rhs,
                    out_factors, out_bias, status):
    n_rows = indptr.shape[0] - 1
    k = fixed.shape[1]
    m = k + 1
    n_blocks = X.shape[0]
    chunk = X.shape[1]
    mu32 = np.float32(mu)
    for blk in prange(n_blocks):
        Xb = X[blk]
        Tb = T[blk]
        Gb = G[blk]
        Sb = S[blk]
        rb = rhs[blk]
        for r in range(blk, n_rows, n_blocks):
            start = indptr[r]
            end = indptr[r + 1]
            Gb[:, :] = 0.0
            rb[:] = 0.0
            for c0 in range(start, end, chunk):
                n = min(c0 + chunk, end) - c0
                for j in range(n):
                    c = indices[c0 + j]
                    Xb[j, 0] = 1.0
                    for a in range(k):
                        Xb[j, a + 1] = fixed[c, a]
                    Tb[j] = values[c0 + j] - mu32 - fixed_bias[c]
                Xn = Xb[:n]
                np.dot(Xn.T, Xn, Sb)
                Gb += Sb
                rb += np.dot(Xn.T, Tb[:n])
            lam = reg * np.float64(end - start) ** reg_exponent
            Gb[0, 0] += reg_bias
            for a in range(1, m):
                Gb[a, a] += lam
            if cholesky_upper(Gb, m) != 0:
                status[r] = 1
                continue
            solve_lower_t(Gb, rb, m)
            solve_upper(Gb, rb, m)
            out_bias[r] = rb[0]
            for a in range(k):
                out_factors[r, a] = rb[a + 1]


def blas_half_step(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, reg_exponent, out_f, out_b):
    k = fixed.shape[1]
    n_rows = len(indptr) - 1
    nb = max(1, min(n_rows, numba.get_num_threads()))
    status = np.zeros(n_rows, np.int8)
    _blas_half_step(indptr, indices, values, fixed, fixed_bias, float(mu), float(reg), float(reg_bias),
                    float(reg_exponent), np.zeros((nb, 256, k + 1)), np.zeros((nb, 256)), np.zeros((nb, k + 1, k + 1)),
                    np.zeros((nb, k + 1, k + 1)), np.zeros((nb, k + 1)), out_f, out_b, status)
    if status.any():
        raise RuntimeError(f"the BLAS variant failed on {np.count_nonzero(status)} rows")


def new_half_step(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, reg_exponent, out_f, out_b):
    from mfrec.kernels.als import solve_rows

    solve_rows(indptr, indices, values, fixed, fixed_bias, mu, reg=reg, reg_bias=reg_bias, weighted=True,
               reg_exponent=reg_exponent, solver="cholesky", out_factors=out_f, out_bias=out_b, validate=False)


# -- the sample and the runs -----------------------------------------------------------------------
def sample_rows(indptr: np.ndarray, every: int, longest: int) -> np.ndarray:
    n = np.diff(indptr)
    rows = set(range(0, len(n), every)) | set(np.argsort(-n, kind="stable")[:longest].tolist())
    return np.array(sorted(rows), np.int64)


def sub_csr(csr, rows: np.ndarray):
    indptr = np.asarray(csr.indptr, np.int64)
    lens = indptr[rows + 1] - indptr[rows]
    sub = np.zeros(len(rows) + 1, np.int64)
    sub[1:] = np.cumsum(lens)
    take = np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in rows]) if len(rows) else np.zeros(0, np.int64)
    return sub, np.ascontiguousarray(np.asarray(csr.indices)[take], np.int32), np.ascontiguousarray(
        np.asarray(csr.values)[take], np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="synth-25m", help="prepared dataset (name or path)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--every", type=int, default=25, help="sample every n-th user and movie")
    ap.add_argument("--longest", type=int, default=20, help="and the n longest rows of each side")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds on the sample (after one warm-up)")
    ap.add_argument("--epochs", type=int, default=3, help="timed full epochs of the new solver (after one warm-up)")
    ap.add_argument("--full-baseline", action="store_true", help="also one full epoch of the filed solver")
    ap.add_argument("--blas", action="store_true", help="also time the BLAS-Gram variant on the sample")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "cholesky_speed.json"))
    args = ap.parse_args()

    import mfrec.data

    ds = mfrec.data.load(args.data, data_root=args.data_root)
    k = args.k
    rng = np.random.default_rng(0)
    P = (rng.standard_normal((ds.n_users, k)) * 0.1).astype(np.float32)
    Q = (rng.standard_normal((ds.n_movies, k)) * 0.1).astype(np.float32)
    bu = (rng.standard_normal(ds.n_users) * 0.1).astype(np.float32)
    bi = (rng.standard_normal(ds.n_movies) * 0.1).astype(np.float32)
    mu = float(np.mean(ds.train.rating, dtype=np.float64))
    hyper = dict(reg=0.4, reg_bias=1.0, reg_exponent=0.75)  # mf's defaults
    sides = {}
    for side, csr, fixed, fbias in (("users", ds.train_by_user, Q, bi), ("movies", ds.train_by_movie, P, bu)):
        rows = sample_rows(np.asarray(csr.indptr), args.every, args.longest)
        sides[side] = (sub_csr(csr, rows), fixed, fbias, rows)
    solvers = {"filed": filed_cholesky_half_step, "new": new_half_step}
    if args.blas:
        from threadpoolctl import threadpool_limits

        def blas_pinned(*a):
            with threadpool_limits(1, "blas"):
                blas_half_step(*a)

        solvers["blas_gemm"] = blas_half_step
        solvers["blas_gemm_1thread"] = blas_pinned

    def run(name: str) -> tuple[float, float, dict]:
        outs = {}
        c0 = time.process_time()
        t0 = time.perf_counter()
        for side, ((ip, ind, val), fixed, fbias, rows) in sides.items():
            f = np.zeros((len(rows), k), np.float32)
            b = np.zeros(len(rows), np.float32)
            solvers[name](ip, ind, val, fixed, fbias, mu, hyper["reg"], hyper["reg_bias"], hyper["reg_exponent"], f, b)
            outs[side] = (f, b)
        return time.perf_counter() - t0, time.process_time() - c0, outs

    seconds: dict[str, list[float]] = {name: [] for name in solvers}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in solvers}
    results = {}
    load = []
    for rnd in range(args.rounds + 1):  # round 0: warm-up
        for name in solvers:
            s, c, outs = run(name)
            if rnd:
                seconds[name].append(s)
                cpu_seconds[name].append(c)
            results[name] = outs
        if rnd:
            load.append(loadavg())
        print(f"round {rnd}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in seconds.items() if v and rnd), flush=True)
    diffs = {name: {side: {"factors": float(np.abs(results[name][side][0] - results["filed"][side][0]).max()),
                           "bias": float(np.abs(results[name][side][1] - results["filed"][side][1]).max())}
                    for side in sides} for name in solvers if name != "filed"}
    sample = {side: {"rows": len(rows), "ratings": int(ip[-1]), "longest_row": int(np.diff(ip).max())}
              for side, ((ip, _, _), _, _, rows) in sides.items()}
    out = {
        "dataset": ds.name, "n_users": ds.n_users, "n_movies": ds.n_movies, "n_train": len(ds.train), "k": k,
        "hyper": hyper, "threads": numba.get_num_threads(),
        "sample": {"every": args.every, "longest": args.longest, **sample,
                   "share_of_epoch_ratings": sum(v["ratings"] for v in sample.values()) / (2 * len(ds.train))},
        "sample_seconds": seconds, "sample_median_seconds": {n: statistics.median(v) for n, v in seconds.items()},
        "speedup_vs_filed_per_round_median": {n: statistics.median(a / b for a, b in zip(seconds["filed"], v))
                                              for n, v in seconds.items() if n != "filed"},
        "sample_cpu_seconds": cpu_seconds,
        "cpu_speedup_vs_filed_per_round_median": {n: statistics.median(a / b for a, b in zip(cpu_seconds["filed"], v))
                                                  for n, v in cpu_seconds.items() if n != "filed"},
        "max_abs_difference_to_filed": diffs, "loadavg_per_round": load,
    }
    print(f"sample ({out['sample']['share_of_epoch_ratings']:.1%} of an epoch's ratings): medians "
          + ", ".join(f"{n} {v:.2f} s" for n, v in out["sample_median_seconds"].items())
          + "; speed-up vs filed " + ", ".join(f"{n} {v:.1f}x" for n, v in out["speedup_vs_filed_per_round_median"].items())
          + " (CPU seconds: " + ", ".join(f"{n} {v:.1f}x" for n, v in out["cpu_speedup_vs_filed_per_round_median"].items()) + ")"
          + f"; max |difference| {diffs}", flush=True)

    u, m = ds.train_by_user, ds.train_by_movie

    def epoch(half) -> float:
        t0 = time.perf_counter()
        half(u.indptr, u.indices, u.values, Q, bi, mu, hyper["reg"], hyper["reg_bias"], hyper["reg_exponent"], P, bu)
        half(m.indptr, m.indices, m.values, P, bu, mu, hyper["reg"], hyper["reg_bias"], hyper["reg_exponent"], Q, bi)
        return time.perf_counter() - t0

    full = []
    cpu = []
    for e in range(args.epochs + 1):
        c0 = time.process_time()
        s = epoch(new_half_step)
        if e:
            full.append(s)
            cpu.append(time.process_time() - c0)
        print(f"full epoch {e}{' (warm-up)' if not e else ''}: new {s:.2f} s, load {loadavg()}", flush=True)
    out["full_epoch_seconds_new"] = full
    out["full_epoch_cpu_seconds_new"] = cpu
    out["full_epoch_median_seconds_new"] = statistics.median(full) if full else None
    if args.full_baseline:
        s = epoch(filed_cholesky_half_step)
        out["full_epoch_seconds_filed"] = s
        out["full_epoch_speedup_vs_filed"] = s / statistics.median(full) if full else None
        print(f"full epoch filed: {s:.1f} s", flush=True)
    out["loadavg_after"] = loadavg()
    out["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
