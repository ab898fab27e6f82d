"""The stream engine of ``prepare``: a ratings file larger than memory, in memory bounded by a budget.

The ratings never sit in memory whole. The work is done in passes, each holding at most one
partition (a range of users) at a time:

1. **Count** (Polars streaming over the scan): the distinct user ids with their number of ratings,
   and whether any value is bad (a bad line sends the file through the Numba parser for
   its one-sentence, line-numbered error, as the Polars engine does).
2. **Partition** (one Polars streaming sink, ``PartitionBy``): every rating, with its line number, into
   one of P Arrow IPC files by user id range, in a scratch folder beside the output. P is chosen from
   the per-user counts so that each partition fits the budget; one user's ratings must fit it.
3. **Per partition** (NumPy): sort by (user, timestamp, movie, line), keep the latest of each (user,
   movie) pair, save it back. A user's ratings all live in one partition, so every duplicate is
   found there. Then the movie ids seen become dense indices (sorted ids, as the other engines).
4. **Filters**: ``--min-user-ratings`` / ``--min-movie-ratings`` as alive-flags per user and movie
   (a rating stays while both are alive), one pass over the partitions per round, to the same fixed
   point as ``mfrec.data.prepare.min_count_mask``.
5. **Split**: per partition in user order; the random split and the canonical validation share draw
   from one generator in that order (the same stream as the in-memory engines). The time split's
   quantile needs every timestamp at once: it is taken when they fit the budget (8 bytes a rating),
   otherwise refused with a sentence that asks for ``--cutoff``.
6. **Write**: each partition's ratings go straight to their place in the final ``.npy`` files (the
   dataset is ordered by split, then user), and the by-movie CSR is built in movie blocks that fit
   the budget, from the written train slice; then ``write_dataset_with`` hashes and swaps the folder in.

The output is byte-identical to the Numba and Polars engines'. The scratch folder is deleted on
success, on error and on Ctrl-C; one a killed run leaves is removed by the next prepare's recovery.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.errors import DataError

# bytes of memory one rating of a partition costs while it is sorted and deduplicated: the five
# columns (28 B), their sorted copies, the sort's int64 permutations and the pair keys
ROW_BYTES = 112
TRANSPOSE_BYTES = 16  # one training rating of a movie block (user and rating), against half the budget
CHUNK_BYTES = 64  # one training rating of a chunk read to place (its columns, masks, sort and positions), the other half
MIN_BUDGET = 16 << 20
SMALL_IDS = 4_000_000  # ids below this (plus 4 per id) are looked up in tables (16 MB at most), larger ones searched


def parse_size(text: str | int) -> int:
    """Bytes from ``512MB``, ``2G``, ``1.5GiB``, ``300000000`` (powers of 1024)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise DataError(f"--memory-budget {text!r} is not a size; give e.g. 512MB or 2GB")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


def available_memory() -> int:
    """Bytes this process may still use: MemAvailable, or less where its cgroup's memory limit says so."""
    avail = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_f, usage_f in _cgroup_files():
        try:
            limit = open(limit_f).read().strip()
            if limit != "max" and int(limit) < (1 << 60):
                room = int(limit) - int(open(usage_f).read().strip())
                avail = room if avail is None else min(avail, room)
        except (OSError, ValueError):
            continue
    return avail if avail is not None else 4 << 30


def _cgroup_files() -> list[tuple[str, str]]:
    """(limit, usage) files of this process's memory cgroup: v2 (``0::/path``) and v1 (``N:memory:/path``)."""
    out = []
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return out
    for line in lines:
        _n, controllers, path = line.split(":", 2)
        if controllers == "":
            out.append((f"/sys/fs/cgroup{path}/memory.max", f"/sys/fs/cgroup{path}/memory.current"))
        elif "memory" in controllers.split(","):
            base = f"/sys/fs/cgroup/memory{path}"
            out.append((f"{base}/memory.limit_in_bytes", f"{base}/memory.usage_in_bytes"))
    return out


def default_budget() -> int:
    """Half the memory available now: room for the interpreter, Polars' reader and the page cache."""
    return max(MIN_BUDGET, available_memory() // 2)


IN_MEMORY_PER_FILE_BYTE = 2.5  # the Numba engine's peak over the ratings file's size (1.57 GB for a 661 MB ml-25m CSV)


def choose_engine(ratings_file: Path | None) -> tuple[str, str]:
    """``--engine auto``: "stream" when the in-memory engines would need more than the memory available, else "numba".

    Returns the engine and the reason, for the run summary. Without a file to measure (a zip, or
    generated data), "numba".
    """
    if ratings_file is None or not ratings_file.is_file():
        return "numba", "auto"
    need = ratings_file.stat().st_size * IN_MEMORY_PER_FILE_BYTE
    avail = available_memory()
    if need > avail:
        return "stream", f"auto: {ratings_file.name} needs ~{fmt_bytes(need)} in memory, {fmt_bytes(avail)} available"
    return "numba", "auto"


def fmt_bytes(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{int(n):,} bytes"


@dataclass
class Ordered:
    """What the stream engine hands to ``prepare``: the ids and where the written ratings are."""

    user_ids: np.ndarray
    movie_ids: np.ndarray
    split_counts: np.ndarray
    split_info: dict[str, Any]
    n_dupes: int
    n_before: int
    mean_rating: float
    fill: Callable  # write_dataset_with's fill
    partitions: int


class Scratch:
    """A scratch folder beside the output, named like the store's (so recovery removes a killed run's)."""

    def __init__(self, root: Path, name: str):
        from mfrec.data.names import plain_name
        from mfrec.data.store import SCRATCH_RESERVE, _scratch

        plain_name(name, "dataset name", SCRATCH_RESERVE, root)
        root.mkdir(parents=True, exist_ok=True)
        self.path = _scratch(root.resolve(), name, "tmp")  # absolute: Polars' partitioned sink takes paths as given
        self.path.mkdir()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def order_stream(raw, split, min_user: int, min_movie: int, canonical_test, say: Callable[[str], None],
                 scratch: Path, budget: int) -> Ordered:
    """Passes 1-5 over ``raw.ratings`` (a lazy scan or a frame) in ``scratch``; returns what pass 6 needs."""
    import polars as pl

    from mfrec.data.lazy import SCHEMA_NAMES
    from mfrec.data.raw import check_side_tables
    from mfrec.data.splits import CANONICAL

    if split.method in CANONICAL and canonical_test is None:
        raise DataError(f"split {split.method!r} is one of ml-100k's canonical files and needs --dataset ml-100k")
    if budget < MIN_BUDGET:
        raise DataError(f"--memory-budget {fmt_bytes(budget)} is too small: the stream engine needs at least {fmt_bytes(MIN_BUDGET)}")
    lf = raw.ratings.lazy()

    # pass 1: ids, counts and the value checks
    counts = _count(lf, raw, say)
    if counts is None:  # a bad value or a parse failure: the Numba parser names the line (or reads what Polars cannot)
        if raw.rescan is None:
            from mfrec.data.lazy import _raise_first_bad

            _raise_first_bad(lf.with_row_index("line").collect(), raw.rating_scale, raw.rating_step, raw.ratings_file)
        lf = raw.rescan().lazy()
        counts = _count(lf, raw, say)
    users, n_read = counts
    if n_read == 0:
        raise DataError(f"{raw.ratings_file}: no ratings")
    user_ids = users["userId"].to_numpy().astype(np.int64)
    per_user = users["len"].to_numpy().astype(np.int64)
    say(f"counted {n_read:,} ratings of {len(user_ids):,} users")

    # pass 2: partitions by user range, each small enough for the budget
    rows = max(1, budget // ROW_BYTES)
    big = int(np.argmax(per_user))
    if per_user[big] > rows:
        raise DataError(f"--memory-budget {fmt_bytes(budget)} holds {rows:,} ratings at a time, but user {user_ids[big]} alone "
                        f"has {per_user[big]:,}: raise the budget to at least {fmt_bytes(per_user[big] * ROW_BYTES)}")
    starts = _partition_starts(per_user, rows)
    n_parts = len(starts)
    first_ids = user_ids[starts]  # partition p holds user ids from first_ids[p] up to the next one
    # the partition of a rating: which user id range its id falls in (a binary search per rating; a
    # literal Series searched instead makes the streaming engine hold far more than a batch)
    part = pl.col("userId").bin_intervals(first_ids[1:].tolist(), labels=False)
    say(f"partitioning into {n_parts} user range(s) of at most {rows:,} ratings ({fmt_bytes(budget)} budget)")
    _sink_partitions(lf.select(*SCHEMA_NAMES).with_row_index("line").with_columns(part=part), scratch)

    # pass 3: per partition, (user, time, movie, line) order, the latest of each pair; the movie ids seen
    n_users = len(user_ids)
    user_index = _indexer(user_ids)
    bounds = np.append(starts, n_users)
    n_dupes = 0
    n_before = 0
    seen = []
    for p in range(n_parts):
        frame = _read_partition(scratch, p)
        u = user_index(frame["userId"].to_numpy())
        mid = frame["movieId"].to_numpy()  # ids: they sort as their indices will
        ts = frame["timestamp"].to_numpy()
        order = _sort_order(u, ts, mid, frame["line"].to_numpy())
        rating = frame["rating"].to_numpy()
        del frame
        u, mid, ts, rating = u[order], mid[order], ts[order], rating[order]
        del order
        keep = _latest_of_pairs(u, mid, 1 << 31)
        if keep is not None:
            n_dupes += len(u) - int(keep.sum())
            u, mid, ts, rating = u[keep], mid[keep], ts[keep], rating[keep]
        n_before += len(u)
        seen.append(_distinct(mid))
        _save_part(scratch, p, u=u, mid=mid, ts=ts, rating=rating)
        for f in scratch.glob(f"in-{p}-*.ipc"):
            f.unlink()
        say(f"partition {p + 1}/{n_parts}: users {bounds[p]:,}..{bounds[p + 1] - 1:,}, {len(u):,} ratings sorted")
    if n_before + n_dupes != n_read:
        raise DataError(f"the partition files in {scratch} hold {n_before + n_dupes:,} of the {n_read:,} ratings read: "
                        f"is the disk full?")
    if n_dupes:
        say(f"dropped {n_dupes:,} duplicate (user, movie) ratings, keeping the latest of each")
    movie_ids = np.unique(np.concatenate(seen)).astype(np.int64)
    del seen
    n_movies = len(movie_ids)
    movie_index = _indexer(movie_ids)
    for p in range(n_parts):  # movie ids to indices
        (mid,) = _load_part(scratch, p, "mid")
        np.save(scratch / f"part-{p}-m.npy", movie_index(mid))
        (scratch / f"part-{p}-mid.npy").unlink()

    # pass 4: the iterated minimum-count filters as alive flags
    alive_u, alive_m, rounds = _filter(scratch, n_parts, n_users, n_movies, min_user, min_movie)
    kept_u = np.zeros(n_users, np.int64)
    kept_m = np.zeros(n_movies, np.int64)
    if alive_u is not None:
        for p in range(n_parts):
            u, m = _load_part(scratch, p, "u", "m")
            k = alive_u[u] & alive_m[m]
            kept_u += np.bincount(u[k], minlength=n_users)
            kept_m += np.bincount(m[k], minlength=n_movies)
        if kept_u.sum() == 0:
            raise DataError(f"no ratings left after --min-user-ratings {min_user} and --min-movie-ratings {min_movie}")
        say(f"filters: {n_before - int(kept_u.sum()):,} ratings dropped in {rounds} round(s)")
    new_u = np.cumsum(kept_u > 0, dtype=np.int64) - 1 if alive_u is not None else None
    new_m = np.cumsum(kept_m > 0, dtype=np.int64) - 1 if alive_u is not None else None
    if alive_u is not None:
        user_ids, movie_ids = user_ids[kept_u > 0], movie_ids[kept_m > 0]
    check_side_tables(raw, user_ids, movie_ids)
    n_kept = int(kept_u.sum()) if alive_u is not None else n_before
    say(f"mapped {n_kept:,} ratings of {len(user_ids):,} users and {len(movie_ids):,} movies")

    def part_arrays(p: int, *cols: str) -> list[np.ndarray]:
        """A partition's columns after the filters, in the final indices."""
        arrays = _load_part(scratch, p, *sorted(set(cols) | {"u", "m"}))
        named = dict(zip(sorted(set(cols) | {"u", "m"}), arrays))
        if alive_u is not None:
            k = alive_u[named["u"]] & alive_m[named["m"]]
            named = {c: a[k] for c, a in named.items()}
            named["u"] = new_u[named["u"]].astype(np.int32)
            named["m"] = new_m[named["m"]].astype(np.int32)
        return [named[c] for c in cols]

    # pass 5: split codes, per partition in user order
    codes_of, split_info = _splitter(raw, split, canonical_test, user_ids, movie_ids, n_kept, budget,
                                     lambda: [part_arrays(p, "ts")[0] for p in range(n_parts)])
    split_counts = np.zeros(3, np.int64)
    total = 0.0
    for p in range(n_parts):
        u, m, ts, rating = part_arrays(p, "u", "m", "ts", "rating")
        codes = codes_of(u, m, ts)
        np.save(scratch / f"codes-{p}.npy", codes)
        split_counts += np.bincount(codes, minlength=3)
        total += float(rating.astype(np.float64).sum())
    codes_of.finish()
    say(f"split {split.method}: train {split_counts[0]:,} / val {split_counts[1]:,} / test {split_counts[2]:,}")

    def fill(tmp: Path, save) -> tuple[dict, int]:
        return _write_arrays(tmp, scratch, n_parts, part_arrays, split_counts, len(user_ids), len(movie_ids), budget, say)

    return Ordered(user_ids, movie_ids, split_counts, split_info, n_dupes, n_before, total / max(1, n_kept), fill, n_parts)


# -- pass 1 and 2 -------------------------------------------------------------------------------------
def _count(lf, raw, say) -> tuple[Any, int] | None:
    """(users with their number of ratings, ratings) from one streaming run; None when a value is bad."""
    import polars as pl

    from mfrec.data.lazy import _bad_value_exprs

    checks = _bad_value_exprs(raw.rating_scale, raw.rating_step)
    if "_gaps" in lf.collect_schema().names():
        checks.append(pl.col("_gaps"))
    bad = pl.any_horizontal(checks).fill_null(True).any()
    say("counting users (streaming)")
    try:  # one query: several over the same scan would share it through a cache that holds it all
        users = lf.group_by("userId").agg(pl.len(), bad=bad).sort("userId").collect(engine="streaming")
    except pl.exceptions.PolarsError:
        return None
    if users["bad"].any() or users["userId"].null_count():
        return None
    return users, int(users["len"].sum())


def _partition_starts(per_user: np.ndarray, rows: int) -> np.ndarray:
    """First user index of each partition: consecutive users, at most ``rows`` ratings a partition."""
    starts = [0]
    filled = 0
    for i, c in enumerate(per_user.tolist()):
        if filled + c > rows and filled > 0:
            starts.append(i)
            filled = 0
        filled += c
    return np.asarray(starts, np.int64)


def _sink_partitions(lf, scratch: Path) -> None:
    """Every rating into ``in-<partition>-<k>.ipc`` files, streamed (Polars' partitioned sink)."""
    import polars as pl

    def path(args) -> str:
        return str(scratch / f"in-{args.partition_keys[0, 0]}-{args.index_in_partition}.ipc")

    lf.sink_ipc(pl.PartitionBy(scratch, key="part", include_key=False, file_path_provider=path),
                engine="streaming")


def _read_partition(scratch: Path, p: int):
    import polars as pl

    files = sorted(scratch.glob(f"in-{p}-*.ipc"))
    if not files:
        return pl.DataFrame(schema={"userId": pl.Int32, "movieId": pl.Int32, "rating": pl.Float32,
                                    "timestamp": pl.Int64, "line": pl.UInt32})
    return pl.concat([pl.read_ipc(f) for f in files], rechunk=False)


def _sort_order(u: np.ndarray, ts: np.ndarray, mid: np.ndarray, line: np.ndarray) -> np.ndarray:
    """The permutation that sorts by (user, timestamp, movie id, line): two int64 keys where they fit."""
    if len(u) == 0:
        return np.zeros(0, np.int64)
    t_lo, t_hi = int(ts.min()), int(ts.max())
    u_lo, u_hi = int(u.min()), int(u.max())
    if (u_hi - u_lo + 1) * (t_hi - t_lo + 1) < (1 << 62) and int(mid.min()) >= 0:
        # user and time in one key; movie id (< 2**31) and line (< 2**32) in the other
        first = (u - u_lo).astype(np.int64) * (t_hi - t_lo + 1) + (ts - t_lo)
        order = np.argsort(first, kind="stable")
        f = first[order]
        tie = f[1:] == f[:-1]
        if tie.any():  # the ratings of a user on one second: sort those groups by (movie id, line)
            in_group = np.zeros(len(f), np.bool_)
            in_group[1:] |= tie
            in_group[:-1] |= tie
            at = np.flatnonzero(in_group)
            sub = order[at]
            second = mid[sub].astype(np.int64) << 32 | line[sub].astype(np.int64)
            order[at] = sub[np.lexsort((second, first[sub]))]
        return order
    return np.lexsort((line, mid, ts, u))


def _indexer(ids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function from ids (all among the sorted ``ids``) to their int32 indices: a table when ids are small."""
    if len(ids) and int(ids[0]) >= 0 and int(ids[-1]) < SMALL_IDS + 4 * len(ids):
        table = np.zeros(int(ids[-1]) + 1, np.int32)
        table[ids] = np.arange(len(ids), dtype=np.int32)
        return lambda x: table[x]
    return lambda x: np.searchsorted(ids, x).astype(np.int32)


def _distinct(ids: np.ndarray) -> np.ndarray:
    """The distinct values of non-negative ids, ascending: by presence flags when the ids are small."""
    if len(ids) and int(ids.max()) < SMALL_IDS + 4 * len(ids):
        present = np.zeros(int(ids.max()) + 1, np.bool_)
        present[ids] = True
        return np.flatnonzero(present)
    return np.unique(ids)


def _latest_of_pairs(u: np.ndarray, m: np.ndarray, n_movies: int) -> np.ndarray | None:
    """For ratings in (user, time, movie, line) order, the mask of the last of each (user, movie) pair
    (``m`` below ``n_movies``), or None when there are no repeated pairs."""
    key = u.astype(np.int64) * n_movies + m
    by_pair = np.argsort(key, kind="stable")
    sk = key[by_pair]
    last = np.ones(len(sk), np.bool_)
    np.not_equal(sk[1:], sk[:-1], out=last[:-1])
    if last.all():
        return None
    keep = np.zeros(len(u), np.bool_)
    keep[by_pair[last]] = True
    return keep


def _save_part(scratch: Path, p: int, **cols: np.ndarray) -> None:
    for c, a in cols.items():
        np.save(scratch / f"part-{p}-{c}.npy", a)


def _load_part(scratch: Path, p: int, *cols: str) -> list[np.ndarray]:
    return [np.load(scratch / f"part-{p}-{c}.npy") for c in cols]


# -- pass 4 -----------------------------------------------------------------------------------------
def _filter(scratch: Path, n_parts: int, n_users: int, n_movies: int, min_user: int, min_movie: int):
    """Alive flags of users and movies after the iterated filters (None, None, 0 when there are none).

    Round r drops the movies with fewer than ``min_movie`` ratings left, then the users with fewer
    than ``min_user``; a rating is left while its user and its movie are. A partition holds whole
    users, so the users' counts of round r and the movies' counts of round r + 1 come from one pass.
    """
    if min_user <= 1 and min_movie <= 1:
        return None, None, 0
    alive_u = np.ones(n_users, np.bool_)
    alive_m = np.ones(n_movies, np.bool_)
    movie_counts = None
    rounds = 0
    while True:
        rounds += 1
        before = (int(alive_u.sum()), int(alive_m.sum()))
        if movie_counts is None:  # the first round's movie counts
            movie_counts = np.zeros(n_movies, np.int64)
            for p in range(n_parts):
                u, m = _load_part(scratch, p, "u", "m")
                movie_counts += np.bincount(m, minlength=n_movies)
        if min_movie > 1:
            alive_m &= movie_counts >= min_movie
        next_counts = np.zeros(n_movies, np.int64)
        for p in range(n_parts):
            u, m = _load_part(scratch, p, "u", "m")
            k = alive_u[u] & alive_m[m]
            if min_user > 1:
                cu = np.bincount(u[k], minlength=n_users)
                lo, hi = (int(u[0]), int(u[-1]) + 1) if len(u) else (0, 0)
                alive_u[lo:hi] &= cu[lo:hi] >= min_user
                k &= alive_u[u]
            next_counts += np.bincount(m[k], minlength=n_movies)
        movie_counts = next_counts
        if (int(alive_u.sum()), int(alive_m.sum())) == before:
            return alive_u, alive_m, rounds


# -- pass 5 -----------------------------------------------------------------------------------------
class _Codes:
    """Split codes of one partition after another (in user order); ``finish`` checks the whole."""

    def __init__(self, fn, finish=None):
        self.fn, self._finish = fn, finish

    def __call__(self, u, m, ts):
        return self.fn(u, m, ts)

    def finish(self) -> None:
        if self._finish is not None:
            self._finish()


def _splitter(raw, split, canonical_test, user_ids, movie_ids, n: int, budget: int, all_timestamps) -> tuple[_Codes, dict]:
    from mfrec.data.splits import CANONICAL, TEST, TRAIN, VAL, random_codes, time_split, user_last_split

    split.validate()
    if split.method == "none":
        return _Codes(lambda u, m, ts: np.zeros(len(u), np.int8)), {}
    if split.method == "user-last":
        def user_last(u, m, ts):
            if len(u) == 0:
                return np.zeros(0, np.int8)
            lo = int(u[0])
            return user_last_split(u - lo, int(u[-1]) - lo + 1, split.holdout, split.val_fraction)
        return _Codes(user_last), {}
    if split.method == "random":
        rng = np.random.default_rng(split.seed)

        def draw(u, m, ts):  # random_split's draws, continued partition after partition: the same stream
            return random_codes(rng.random(len(u)), split.test_fraction, split.val_fraction)
        return _Codes(draw), {}
    if split.method == "time":
        info: dict[str, Any] = {}
        cutoff, vcut = split.cutoff, None
        if cutoff is None or split.val_fraction > 0:
            if n * 8 > budget:
                raise DataError(f"the time split's quantile needs all {n:,} timestamps in memory ({fmt_bytes(n * 8)}), more than "
                                f"--memory-budget {fmt_bytes(budget)}: give --cutoff (and no --val-fraction) or a larger budget")
            ts_all = np.concatenate(all_timestamps())
            _codes, info = time_split(ts_all, cutoff, split.test_fraction, split.val_fraction)
            del _codes, ts_all
            cutoff, vcut = info["cutoff"], info.get("val_cutoff")
        else:
            info = {"cutoff": cutoff}
        seen_train = [False]

        def by_time(u, m, ts):
            c = np.zeros(len(ts), np.int8)
            c[ts >= cutoff] = TEST
            if vcut is not None:
                c[(ts >= vcut) & (ts < cutoff)] = VAL
            seen_train[0] |= bool(np.any(c == TRAIN))
            return c

        def check():
            if not seen_train[0]:
                raise DataError(f"the time cut-off {cutoff} leaves no training ratings")
        return _Codes(by_time, check), info
    if split.method in CANONICAL:
        from mfrec.data.splits import pair_keys

        pairs = canonical_test(split.method)
        n_movies = len(movie_ids)
        test_keys, all_known = pair_keys(pairs, user_ids, movie_ids)
        rng = np.random.default_rng(split.seed)
        n_test = [0]

        def canonical(u, m, ts):
            keys = u.astype(np.int64) * n_movies + m
            c = np.where(np.isin(keys, test_keys), np.int8(2), np.int8(0)).astype(np.int8)
            n_test[0] += int((c == 2).sum())
            if split.val_fraction > 0:
                base = np.flatnonzero(c == 0)
                c[base[rng.random(len(base)) < split.val_fraction]] = 1
            return c

        def check():
            if not all_known or n_test[0] != pairs.height:
                raise DataError(f"{split.method}.test has ratings that are not in {raw.ratings_file} (or were filtered out)")
        info = {"test_file": f"{split.method}.test"}
        if split.val_fraction > 0:
            info["val_fraction"] = split.val_fraction
        return _Codes(canonical, check), info
    raise DataError(f"unknown split {split.method!r}")


# -- pass 6 -----------------------------------------------------------------------------------------
def _npy_for_writing(path: Path, dtype, n: int) -> int:
    """Create ``path`` as an ``.npy`` of ``n`` zeros of ``dtype`` (sparse) and return where its data starts."""
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n,))
    start = mm.offset
    del mm
    return start


def _write_arrays(tmp: Path, scratch: Path, n_parts: int, part_arrays, split_counts: np.ndarray, n_users: int,
                  n_movies: int, budget: int, say) -> tuple[dict, int]:
    """user/movie/rating/timestamp and the train CSRs into ``tmp``, partition by partition."""
    from mfrec.data.store import split_offsets

    n = int(split_counts.sum())
    offsets = split_offsets(split_counts)
    kinds = {"user": ("u", np.int32), "movie": ("m", np.int32), "rating": ("rating", np.float32),
             "timestamp": ("ts", np.int64)}
    files = {k: (tmp / f"{k}.npy", dt, _npy_for_writing(tmp / f"{k}.npy", dt, n)) for k, (_c, dt) in kinds.items()}
    cursor = np.concatenate([[0], np.cumsum(split_counts)[:-1]]).astype(np.int64)  # where each split's next rating goes
    train_per_user = np.zeros(n_users, np.int64)
    train_per_movie = np.zeros(n_movies, np.int64)
    handles = {k: open(f, "r+b") for k, (f, _dt, _s) in files.items()}
    try:
        for p in range(n_parts):
            cols = dict(zip(("u", "m", "ts", "rating"), part_arrays(p, "u", "m", "ts", "rating")))
            codes = np.load(scratch / f"codes-{p}.npy")
            for c in range(3):
                sel = np.flatnonzero(codes == c)
                if len(sel) == 0:
                    continue
                for k, (col, dt) in kinds.items():
                    f = handles[k]
                    f.seek(files[k][2] + int(cursor[c]) * np.dtype(dt).itemsize)
                    np.ascontiguousarray(cols[col][sel], dtype=dt).tofile(f)
                cursor[c] += len(sel)
                if c == 0:
                    train_per_user += np.bincount(cols["u"][sel], minlength=n_users)
                    train_per_movie += np.bincount(cols["m"][sel], minlength=n_movies)
            say(f"wrote partition {p + 1}/{n_parts}")
    finally:
        for f in handles.values():
            f.close()
    np.save(tmp / "train_user_indptr.npy", _indptr(train_per_user))
    movie_ptr = _indptr(train_per_movie)
    np.save(tmp / "train_movie_indptr.npy", movie_ptr)
    _transpose_train(tmp, files, offsets["train"], movie_ptr, budget, say)
    return offsets, n


def _indptr(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _transpose_train(tmp: Path, files: dict, train: list[int], movie_ptr: np.ndarray, budget: int, say) -> None:
    """train_movie_user / train_movie_rating: the train split grouped by movie (in user order within one).

    Movies are taken in blocks whose entries fit half the budget; for each block the train slice is
    read in chunks and its entries placed by a stable counting sort, then the block is written.
    """
    a, b = train
    n_train = b - a
    n_movies = len(movie_ptr) - 1
    u_start = _npy_for_writing(tmp / "train_movie_user.npy", np.int32, n_train)
    r_start = _npy_for_writing(tmp / "train_movie_rating.npy", np.float32, n_train)
    per_block = max(1, budget // 2 // TRANSPOSE_BYTES)
    chunk = max(1, budget // 2 // CHUNK_BYTES)
    blocks = [0]
    while blocks[-1] < n_movies:  # movie ranges of at most per_block entries (or one movie)
        lo = blocks[-1]
        hi = int(np.searchsorted(movie_ptr, movie_ptr[lo] + per_block, side="right")) - 1
        blocks.append(min(n_movies, max(hi, lo + 1)))
    say(f"by-movie index: {len(blocks) - 1} block(s) over {n_train:,} training ratings")
    with open(tmp / "train_movie_user.npy", "r+b") as fu, open(tmp / "train_movie_rating.npy", "r+b") as fr:
        for lo, hi in zip(blocks[:-1], blocks[1:]):
            base = int(movie_ptr[lo])
            out_u = np.empty(int(movie_ptr[hi]) - base, np.int32)
            out_r = np.empty(len(out_u), np.float32)
            fill = movie_ptr[lo:hi].copy() - base  # next free slot of each movie of the block
            for s in range(a, b, chunk):
                e = min(b, s + chunk)
                m = _read_slice(files["movie"], s, e)
                sel = np.flatnonzero((m >= lo) & (m < hi))
                if len(sel) == 0:
                    continue
                mm = m[sel] - lo
                u = _read_slice(files["user"], s, e)[sel]
                r = _read_slice(files["rating"], s, e)[sel]
                by = np.argsort(mm, kind="stable")
                mm, u, r = mm[by], u[by], r[by]
                group_start = np.flatnonzero(np.r_[True, mm[1:] != mm[:-1]])
                rank = np.arange(len(mm)) - np.repeat(group_start, np.diff(np.r_[group_start, len(mm)]))
                pos = fill[mm] + rank
                out_u[pos], out_r[pos] = u, r
                fill[mm[group_start]] += np.diff(np.r_[group_start, len(mm)])
            fu.seek(u_start + base * 4)
            out_u.tofile(fu)
            fr.seek(r_start + base * 4)
            out_r.tofile(fr)


def _read_slice(spec: tuple[Path, Any, int], start: int, stop: int) -> np.ndarray:
    path, dtype, data_start = spec
    size = np.dtype(dtype).itemsize
    return np.fromfile(path, dtype=dtype, count=stop - start, offset=data_start + start * size)
