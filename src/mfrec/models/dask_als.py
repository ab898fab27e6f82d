"""ALS on a Dask cluster (``Main.py --engine dask``): the single-machine kernels, the ratings in blocks
that stay on the worker that loaded them.

- The users and the movies are each cut into ``n_blocks`` contiguous index ranges holding about the
  same number of training ratings (``blocks_by_count``). Block b belongs to worker b mod n_workers.
- Each block's CSR is read by a task on its worker (from the block files ``Data_processing.py
  --blocks W`` wrote, else from the dataset's memory-mapped CSR; every worker must see the prepared
  dataset at the same path), and stays there: ratings never move, only factors do.
- A half-step sends each worker the other side's factor shards once (float32; one gather task per
  worker), then solves each of its blocks with ``mfrec.kernels.als.solve_rows`` — the same kernel,
  the same warm start and the same per-row maths as one machine, so the result does not depend on
  the number of blocks.
- mf-genre: each movie block returns its partial normal equations per genre set (float64); the
  client sums them in block order and solves the (n_genres k)^2 system once; the genre part of each
  movie block is then formed on its worker from y (small).
- The initial factors are the single-machine draw (``default_rng(seed)``, users then movies), each
  worker drawing the stream in chunks and keeping only its rows, so they do not depend on W either.
- After each epoch the client gathers the factors, hands them to the per-epoch evaluation callback
  (``mfrec.models.epoch_eval``: validation RMSE by default, training RMSE as configured, never test)
  and keeps the best epoch (the single-machine rules); that is ``(n_users + n_movies)(k + 1)``
  float32 per epoch.

Traps guarded: every task sets its worker's Numba threads (``threads``, default the worker's share
of the cores); the half-step kernel releases the GIL (``nogil``) so a busy worker still talks to
the scheduler; ``warm_up`` compiles the kernels on every worker before the first timed epoch; the
client never sends an array larger than the genre factors as a task argument.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.callbacks import EarlyStopping, EpochReport
from mfrec.data.blocks import blocks_by_count, csr_block, find_blocks, read_block
from mfrec.errors import MfrecError, ModelError
from mfrec.models.als import _check_finite, report_epoch
from mfrec.models.config import ALSConfig
from mfrec.models.epoch_eval import EpochState, Evaluation, RatingEvaluation, train_rmse
from mfrec.models.factor import FactorModel

DASK_HINT = 'pip install -e ".[dask]"'
INIT_CHUNK = 1 << 16  # rows of initial factors drawn at a time while skipping to a block's rows


class WorkerLostError(ModelError):
    """A Dask worker died, or a task failed, and the fit could not go on."""


def initial_rows(seed: int, skip: int, lo: int, hi: int, k: int, std: float) -> np.ndarray:
    """Rows lo..hi of the single-machine initial draw: ``default_rng(seed).standard_normal`` over
    ``skip`` rows (the user matrix, for the movies) then this side's rows, times ``std``, float32."""
    rng = np.random.default_rng(seed)
    start = skip + lo
    done = 0
    while done < start:  # the same stream as one big draw: skip it chunk by chunk
        n = min(INIT_CHUNK, start - done)
        rng.standard_normal((n, k))
        done += n
    return (rng.standard_normal((hi - lo, k)) * std).astype(np.float32)


# -- tasks that run on the workers ---------------------------------------------------------------
def _threads(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def load_block(data_path: str, side: str, index: int, lo: int, hi: int, genre: bool,
               block_files: str | None = None) -> dict[str, Any]:
    """A block's training CSR (rows lo..hi, indptr from 0) read on its worker: from its block file
    when ``block_files`` (a ``blocks-W/`` folder) is given, else from the dataset's memory-mapped
    CSR. Movie blocks of mf-genre also get each movie's genre set and genres."""
    from mfrec.data import load

    ds = load(data_path)
    if block_files:
        block = read_block(block_files, side, index)
    else:
        block = csr_block(ds.train_by_user if side == "user" else ds.train_by_movie, lo, hi)
    if len(block["indptr"]) != hi - lo + 1:
        raise ModelError(f"the {side} block {index} holds {len(block['indptr']) - 1} rows, not {hi - lo}")
    block.update(side=side, lo=lo, hi=hi)
    if side == "movie" and genre:
        from mfrec.kernels.als import genre_sets

        gp, gi = np.asarray(ds.movie_genres.indptr, np.int64), np.asarray(ds.movie_genres.indices, np.int32)
        _, set_indptr, set_movies = genre_sets(gp, gi)
        movie_set = np.full(len(gp) - 1, -1, np.int32)
        movie_set[set_movies] = np.repeat(np.arange(len(set_indptr) - 1, dtype=np.int32), np.diff(set_indptr))
        block.update(movie_set=movie_set[lo:hi].copy(), genre_indptr=gp[lo:hi + 1] - gp[lo],
                     genre_indices=gi[gp[lo]:gp[hi]].copy())
    return block


def init_shard(block: dict[str, Any], seed: int, skip: int, k: int, std: float) -> tuple[np.ndarray, np.ndarray]:
    """A block's initial (factors, biases)."""
    return initial_rows(seed, skip, block["lo"], block["hi"], k, std), np.zeros(block["hi"] - block["lo"], np.float32)


def gather_side(shards: list, shifts: list | None) -> tuple[np.ndarray, np.ndarray]:
    """The other side whole on this worker: its shards' factors (plus each movie's genre part when
    ``shifts`` are given) and biases, in block order."""
    F = np.concatenate([s[0] for s in shards]) if shards else np.zeros((0, 0), np.float32)
    if shifts is not None:
        F = F + np.concatenate(shifts)
    return np.ascontiguousarray(F, np.float32), np.concatenate([s[1] for s in shards])


def solve_block(block: dict[str, Any], fixed: tuple[np.ndarray, np.ndarray], previous, shift, mu: float,
                common: dict[str, Any], threads: int) -> tuple[np.ndarray, np.ndarray]:
    """One block's half-step: ``solve_rows`` warm-started from ``previous``; new (factors, biases)."""
    from mfrec.kernels.als import solve_rows

    _threads(threads)
    out_f, out_b = previous[0].copy(), previous[1].copy()
    if block["hi"] > block["lo"]:
        solve_rows(block["indptr"], block["indices"], block["values"], fixed[0], fixed[1], mu, out_factors=out_f,
                   out_bias=out_b, row_shift=shift, what=block["side"], **common)
    return out_f, out_b


def genre_partial(block: dict[str, Any], users: tuple[np.ndarray, np.ndarray], movies, mu: float,
                  n_sets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A movie block's partial normal equations of the genre step, per genre set s:
    S_s = sum p_u p_u^T, h_s = sum e_ui p_u over the block's ratings of movies in s (float64), and
    n_s, their number. e_ui = r_ui - mu - b_u - b_i - p_u . q_i."""
    P, bu = users
    Q, bi = movies
    k = P.shape[1]
    S = np.zeros((n_sets, k, k), np.float64)
    h = np.zeros((n_sets, k), np.float64)
    n = np.zeros(n_sets, np.int64)
    rows = np.repeat(np.arange(block["hi"] - block["lo"], dtype=np.int64), np.diff(block["indptr"]))
    sets = block["movie_set"][rows]
    keep = np.flatnonzero(sets >= 0)
    if not len(keep):
        return S, h, n
    order = keep[np.argsort(sets[keep], kind="stable")]
    u, i, s = block["indices"][order], rows[order], sets[order]
    e = block["values"][order] - (np.float32(mu) + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]))
    cuts = np.flatnonzero(np.diff(s)) + 1
    for part in np.split(np.arange(len(s)), cuts):
        X = P[u[part]]
        S[s[part[0]]] += X.T @ X
        h[s[part[0]]] += X.T @ e[part].astype(np.float32)
        n[s[part[0]]] += len(part)
    return S, h, n


def genre_shard(block: dict[str, Any], Y: np.ndarray, k: int) -> np.ndarray:
    """|G_i|^-1/2 sum_{g in G_i} y_g for the block's movies."""
    from mfrec.kernels.als import genre_part

    if not len(Y):
        return np.zeros((block["hi"] - block["lo"], k), np.float32)
    return genre_part(block["genre_indptr"], block["genre_indices"], Y)


def warm_up() -> int:
    """Compile (or load from cache) the half-step kernel on this worker; returns its Numba threads."""
    import numba

    from mfrec.kernels.als import solve_rows

    indptr = np.array([0, 2], np.int64)
    for solver in ("cholesky", "cg"):
        solve_rows(indptr, np.array([0, 1], np.int32), np.array([4.0, 3.0], np.float32), np.ones((2, 2), np.float32),
                   np.zeros(2, np.float32), 3.5, reg=0.1, reg_bias=0.1, solver=solver)
    return numba.get_num_threads()


def worker_rss_mb() -> float:
    """This worker's peak resident memory (MiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def incoming_bytes(dask_worker=None) -> int:
    """Bytes this worker has received from other workers so far (Dask's transfer log)."""
    log = getattr(dask_worker, "transfer_incoming_log", None) or getattr(dask_worker, "incoming_transfer_log", ())
    return int(sum(entry.get("total", 0) for entry in log))


# -- the client side ------------------------------------------------------------------------------
def dask_client(workers: int | None = None, scheduler: str | None = None, threads_per_worker: int = 1):
    """A ``distributed.Client``: connected to ``scheduler``, else to a new ``LocalCluster`` of
    ``workers`` processes on 127.0.0.1. A missing Dask says how to install it."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ModelError(f"the Dask engine needs dask and distributed; install them with {DASK_HINT}") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s")
        except OSError as e:
            raise ModelError(f"no Dask scheduler answers at {scheduler} ({e})") from None
    cluster = LocalCluster(n_workers=int(workers or 1), threads_per_worker=threads_per_worker, processes=True,
                           host="127.0.0.1", dashboard_address=":0")
    client = Client(cluster)
    client._mfrec_owns_cluster = cluster  # closed with the client (see close_client)
    return client


def close_client(client) -> None:
    """Close ``client``, and the LocalCluster it started, if it started one."""
    cluster = getattr(client, "_mfrec_owns_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def solve_genre_system(sets: list[tuple[int, ...]], S: np.ndarray, h: np.ndarray, n: np.ndarray, n_genres: int,
                       reg: float, weighted: bool, reg_exponent: float, y0: np.ndarray | None = None,
                       max_iter: int | None = None, tol: float = 1e-7) -> np.ndarray:
    """y (n_genres, k) from the summed per-set normal equations (see ``genre_partial``): an exact
    solve, or with ``max_iter`` the single-machine fit's inexact step (``solve_genre_factors``
    under ``--solver cg``): that many Jacobi-preconditioned CG iterations warm-started from ``y0``,
    stopping early below ``tol`` times the starting residual."""
    import scipy.linalg

    from mfrec.kernels.als import SolveError
    from mfrec.kernels.genre import pcg

    k = S.shape[-1]
    M = np.zeros((n_genres * k, n_genres * k), np.float64)
    rhs = np.zeros(n_genres * k, np.float64)
    n_g = np.zeros(n_genres, np.float64)
    for s, gs in enumerate(sets):
        w2 = 1.0 / len(gs)
        for g in gs:
            rhs[g * k:(g + 1) * k] += np.sqrt(w2) * h[s]
            n_g[g] += n[s]
            for g2 in gs:
                M[g * k:(g + 1) * k, g2 * k:(g2 + 1) * k] += w2 * S[s]
    lam = reg * np.maximum(n_g, 1.0) ** reg_exponent if weighted else np.full(n_genres, reg)
    M[np.diag_indices_from(M)] += np.repeat(lam, k)
    if max_iter is not None:
        y = np.zeros(n_genres * k) if y0 is None else np.asarray(y0, np.float64).reshape(-1).copy()
        r = rhs - M @ y
        pcg(lambda v: M @ v, np.diag(M).copy(), y, r, tol * max(float(np.linalg.norm(r)), 1e-300),
            max(1, min(int(max_iter), n_genres * k)))  # raises SolveError on NaN/inf
        return y.reshape(n_genres, k).astype(np.float32)
    try:
        y = scipy.linalg.solve(M, rhs, assume_a="pos")
    except (np.linalg.LinAlgError, ValueError) as e:
        raise SolveError(f"the genre-factor system could not be solved ({e}); raise --reg") from None
    return y.reshape(n_genres, k).astype(np.float32)


def fit_dask(dataset, config: ALSConfig, client, n_blocks: int | None = None, threads: int | None = None,
             callback: Callable[[Any], Any] | None = None, log: Callable[[str], None] | None = None,
             evaluate: Evaluation | None = None) -> FactorModel:
    """Train ``config``'s ALS model on ``dataset`` with the Dask ``client``'s workers; the same
    ``FactorModel`` (and the same numbers, to float rounding) as ``mfrec.models.als.fit``.

    ``n_blocks``: blocks per side (default: one per worker); ``threads``: Numba threads per worker
    (default: the cores each worker's machine has, shared among the workers on it); ``evaluate``: the
    per-epoch evaluation callback, as in ``mfrec.models.als.fit``.
    """
    import os

    from mfrec.kernels.als import genre_part, genre_sets
    say = log or (lambda _m: None)
    config = config.validate()
    t_start = time.perf_counter()
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise WorkerLostError("the Dask cluster has no workers")
    W = int(n_blocks or len(workers))
    if threads is None:
        threads = config.threads or max(1, (os.cpu_count() or 1) // len(workers))
    nu, nm, k = dataset.n_users, dataset.n_movies, config.k
    genre = config.model == "mf-genre"
    train = dataset.train  # the test split is for after the fit (mfrec.training)
    evaluate = RatingEvaluation.for_run(dataset, config) if evaluate is None else evaluate
    scale = (float(dataset.rating_scale[0]), float(dataset.rating_scale[1]))
    if len(train) == 0:
        raise ModelError(f"dataset {dataset.name} has no training ratings")
    mu = float(np.mean(train.rating, dtype=np.float64))
    data_path = str(Path(dataset.path).resolve())
    ucsr, mcsr, gcsr = dataset.train_by_user, dataset.train_by_movie, dataset.movie_genres
    ub, mb = blocks_by_count(ucsr.indptr, W), blocks_by_count(mcsr.indptr, W)
    owner = [workers[b % len(workers)] for b in range(W)]
    sets = genre_sets(gcsr.indptr, gcsr.indices)[0] if genre else []
    n_genres = len(dataset.genres)
    common = dict(reg=config.reg, reg_bias=config.reg_bias, weighted=config.weighted_reg,
                  reg_exponent=config.reg_exponent, solver=config.solver, cg_steps=config.cg_steps)
    say(f"fit {config.model} on Dask: {len(workers)} workers, {W} blocks per side, {threads} Numba threads "
        f"per worker; {nu:,} users, {nm:,} movies, {len(train):,} train ratings, k={k}, solver={config.solver}")

    def on(b, fn, *args):
        # pinned to the block's worker; Dask may run it elsewhere only if that worker is gone
        return client.submit(fn, *args, workers=[owner[b]], allow_other_workers=True, pure=False)

    def on_worker(w, fn, *args):
        return client.submit(fn, *args, workers=[w], allow_other_workers=True, pure=False)

    compiled = client.run(warm_up)
    say(f"kernels compiled on {len(compiled)} workers")
    files = find_blocks(dataset, W)
    files = str(files) if files is not None else None
    if files:
        say(f"workers read their blocks from {files}")
    ublocks = [on(b, load_block, data_path, "user", b, int(ub[b]), int(ub[b + 1]), False, files) for b in range(W)]
    mblocks = [on(b, load_block, data_path, "movie", b, int(mb[b]), int(mb[b + 1]), genre, files) for b in range(W)]
    users = [on(b, init_shard, ublocks[b], config.seed, 0, k, config.init_std) for b in range(W)]
    movies = [on(b, init_shard, mblocks[b], config.seed, nu, k, config.init_std) for b in range(W)]
    zeros = np.zeros((0, k), np.float32)
    shifts = [None] * W  # genre part of each movie block (futures), None before the first genre step
    Y = np.zeros((n_genres if genre else 0, k), np.float32)
    used = sorted(set(owner))

    def everywhere(shards, with_shifts):
        return {w: on_worker(w, gather_side, shards, shifts if with_shifts else None) for w in used}

    history: list[EpochReport] = []
    early = EarlyStopping(config.patience)
    best: tuple[np.ndarray, ...] | None = None
    epoch_seconds: list[float] = []
    moved_before = sum(client.run(incoming_bytes).values())
    try:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            full_movies = everywhere(movies, genre and shifts[0] is not None)
            users = [on(b, solve_block, ublocks[b], full_movies[owner[b]], users[b], None, mu, common, threads)
                     for b in range(W)]
            full_users = everywhere(users, False)
            movies = [on(b, solve_block, mblocks[b], full_users[owner[b]], movies[b],
                         shifts[b], mu, common, threads) for b in range(W)]
            if genre:
                partials = [on(b, genre_partial, mblocks[b], full_users[owner[b]], movies[b], mu, len(sets))
                            for b in range(W)]
                S = h = n = None
                for S_b, h_b, n_b in client.gather(partials):  # summed in block order: W does not change the order of blocks' sums
                    S, h, n = (S_b, h_b, n_b) if S is None else (S + S_b, h + h_b, n + n_b)
                Y = solve_genre_system(sets, S, h, n, n_genres, config.reg_genre, config.weighted_reg,
                                       config.reg_exponent, y0=Y,
                                       max_iter=config.cg_steps if config.solver == "cg" else None)
                shifts = [on(b, genre_shard, mblocks[b], Y, k) for b in range(W)]
            got = client.gather(users + movies)
            seconds = time.perf_counter() - t0
            epoch_seconds.append(seconds)
            P = np.concatenate([f for f, _ in got[:W]]) if W else zeros
            bu = np.concatenate([b for _, b in got[:W]])
            Q = np.concatenate([f for f, _ in got[W:]])
            bi = np.concatenate([b for _, b in got[W:]])
            _check_finite(epoch, user_factors=P, movie_factors=Q, user_biases=bu, movie_biases=bi, genre_factors=Y)
            effective = Q + genre_part(gcsr.indptr, gcsr.indices, Y) if genre else Q
            metrics = evaluate(EpochState(epoch, mu, bu, bi, P, effective, scale))
            report, improved = report_epoch(epoch, metrics, seconds, config, early, callback, say,
                                            f"train {config.model} (dask)")
            if improved:
                best = (P, Q, Y, bu, bi)
            history.append(report)
            best_epoch = report.best_epoch
            if report.stop:
                break
    except MfrecError:  # the data's or the model's own errors, raised on a worker: as they are
        raise
    except Exception as e:  # a task that failed, or a worker lost more often than Dask retries
        raise WorkerLostError(f"the Dask fit stopped at epoch {len(history) + 1}: {type(e).__name__}: {e}") from e
    moved = sum(client.run(incoming_bytes).values()) - moved_before
    rss = client.run(worker_rss_mb)
    if best is not None and best_epoch != history[-1].epoch:
        P, Q, Y, bu, bi = best
    kept_rmse = next(h.train_rmse for h in history if h.epoch == best_epoch)
    if kept_rmse is None:  # not measured per epoch: one pass now, on the kept model
        effective = Q + genre_part(gcsr.indptr, gcsr.indices, Y) if genre else Q
        kept_rmse = train_rmse(EpochState(best_epoch, mu, bu, bi, P, effective, scale), ucsr)
    meta = {
        "dataset": dataset.name, "data_path": data_path,
        "rating_scale": [float(dataset.rating_scale[0]), float(dataset.rating_scale[1])],
        "genres": list(dataset.genres), "best_epoch": best_epoch, "epochs_run": len(history), "train_rmse": kept_rmse,
        "seconds_per_epoch": float(np.mean(epoch_seconds)), "train_seconds": time.perf_counter() - t_start,
        "numba_threads": int(threads), "engine": "dask", "dask_workers": len(workers), "dask_blocks": W,
        "bytes_between_workers_per_epoch": moved / max(len(history), 1),
        "worker_peak_rss_mb": {str(w): float(v) for w, v in rss.items()},
    }
    model = FactorModel(mu, bu, bi, P, Q, Y, gcsr.indptr if genre else None, gcsr.indices if genre else None,
                        dataset.user_ids.ids, dataset.movie_ids.ids, config={**config.to_dict(), **meta})
    model.history = history
    return model
