"""Train / validation / test splits.

Every split function takes the ratings sorted by (user, timestamp) as index arrays and returns an
int8 array of split codes (0 train, 1 val, 2 test), so every rating lands in exactly one split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mfrec.errors import DataError

TRAIN, VAL, TEST = 0, 1, 2
CANONICAL = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
METHODS = ("random", "user-last", "time", "none", *CANONICAL)


@dataclass(frozen=True)
class SplitSpec:
    """How to split; recorded in manifest.json."""

    method: str = "random"  # random | user-last | time | none | u1..u5, ua, ub (ml-100k files)
    test_fraction: float = 0.2  # random: share of ratings held out for test
    val_fraction: float = 0.0  # random / user-last / time: share (of train) held out for validation
    holdout: float = 1.0  # user-last: k most recent ratings per user (>= 1) or a fraction (< 1)
    cutoff: float | None = None  # time: timestamp cut-off (test = ratings at or after it); None = quantile
    seed: int = 42

    def validate(self) -> None:
        if self.method not in METHODS:
            raise DataError(f"unknown split {self.method!r}; choose one of: {', '.join(METHODS)}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise DataError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")
        if not 0.0 <= self.val_fraction < 1.0 or self.test_fraction + self.val_fraction >= 1.0:
            raise DataError(f"--val-fraction must be in [0, 1) and leave training data, got {self.val_fraction}")
        if self.holdout <= 0:
            raise DataError(f"--holdout must be positive (a count >= 1 or a fraction < 1), got {self.holdout}")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}


def random_split(n: int, test_fraction: float, val_fraction: float, seed: int) -> np.ndarray:
    """Each rating independently: test with probability test_fraction, val with val_fraction."""
    rng = np.random.default_rng(seed)
    codes = np.zeros(n, np.int8)
    step = 1 << 22  # in blocks: the same stream as one rng.random(n), without an n-long float64 array
    for a in range(0, n, step):
        r = rng.random(min(step, n - a))
        codes[a:a + len(r)] = random_codes(r, test_fraction, val_fraction)
    return codes


def random_codes(r: np.ndarray, test_fraction: float, val_fraction: float) -> np.ndarray:
    """The random split's codes for uniform draws ``r``: test below test_fraction, then val."""
    c = np.zeros(len(r), np.int8)
    c[r < test_fraction] = TEST
    c[(r >= test_fraction) & (r < test_fraction + val_fraction)] = VAL
    return c


def _rank_from_end(user: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """For ratings sorted by (user, time): position from the user's latest (0 = latest), and counts."""
    counts = np.bincount(user, minlength=n_users)
    ends = np.cumsum(counts)
    return ends[user] - 1 - np.arange(len(user)), counts


def user_last_split(user: np.ndarray, n_users: int, holdout: float, val_fraction: float) -> np.ndarray:
    """Each user's most recent ratings go to test (k of them, or a fraction); the next ones to val.

    A user always keeps at least one training rating. ``user`` must be sorted, with each user's
    ratings in time order. Validation takes the same number of ratings just before the test ones
    when ``val_fraction > 0``.
    """
    from_end, counts = _rank_from_end(user, n_users)
    per_user = counts[user]
    if holdout >= 1:
        k = np.full(len(user), int(holdout))
    else:
        k = np.maximum(1, np.floor(per_user * holdout)).astype(np.int64)
    k = np.minimum(k, per_user - 1)  # keep one for training
    codes = np.zeros(len(user), np.int8)
    codes[from_end < k] = TEST
    if val_fraction > 0:
        kv = np.minimum(k, per_user - 1 - k)
        codes[(from_end >= k) & (from_end < k + kv)] = VAL
    return codes


def time_split(timestamp: np.ndarray, cutoff: float | None, test_fraction: float, val_fraction: float) -> tuple[np.ndarray, dict]:
    """Global cut-off: ratings at or after it are test (default: the (1 - test_fraction) quantile)."""
    if cutoff is None:
        cutoff = float(np.quantile(timestamp, 1.0 - test_fraction)) if len(timestamp) else 0.0
    codes = np.zeros(len(timestamp), np.int8)
    codes[timestamp >= cutoff] = TEST
    info = {"cutoff": cutoff}
    if val_fraction > 0:
        before = timestamp[timestamp < cutoff]
        vcut = float(np.quantile(before, 1.0 - val_fraction)) if len(before) else cutoff
        codes[(timestamp >= vcut) & (timestamp < cutoff)] = VAL
        info["val_cutoff"] = vcut
    if not np.any(codes == TRAIN):
        raise DataError(f"the time cut-off {cutoff} leaves no training ratings")
    return codes, info


def make_split(spec: SplitSpec, user: np.ndarray, timestamp: np.ndarray, n_users: int, n: int | None = None) -> tuple[np.ndarray, dict]:
    """Split codes for ratings sorted by (user, timestamp), and facts to record in the manifest.

    ``n`` (the number of ratings) lets the random split run without the user/timestamp arrays.
    """
    spec.validate()
    if spec.method == "random":
        return random_split(len(user) if n is None else n, spec.test_fraction, spec.val_fraction, spec.seed), {}
    if spec.method == "user-last":
        return user_last_split(user, n_users, spec.holdout, spec.val_fraction), {}
    if spec.method == "time":
        return time_split(timestamp, spec.cutoff, spec.test_fraction, spec.val_fraction)
    if spec.method == "none":
        return np.zeros(len(user), np.int8), {}
    raise DataError(f"split {spec.method!r} is one of the ml-100k canonical files and needs --dataset ml-100k")


def pair_keys(pairs, user_ids: np.ndarray, movie_ids: np.ndarray) -> tuple[np.ndarray, bool]:
    """(user * n_movies + movie of the (userId, movieId) ``pairs`` whose ids are indexed, whether all are)."""
    n_users, n_movies = len(user_ids), len(movie_ids)
    pu, pm = pairs["userId"].to_numpy(), pairs["movieId"].to_numpy()
    tu = np.minimum(np.searchsorted(user_ids, pu), n_users - 1)
    tm = np.minimum(np.searchsorted(movie_ids, pm), n_movies - 1)
    ok = (user_ids[tu] == pu) & (movie_ids[tm] == pm)
    return tu[ok].astype(np.int64) * n_movies + tm[ok], bool(ok.all())
