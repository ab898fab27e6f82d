"""Splits, de-duplication and min-count filters through prepare (the data kernels: test_kernels_ingest.py)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mfrec.data import load
from mfrec.data.prepare import min_count_mask, prepare
from mfrec.data.raw import RawData
from mfrec.data.splits import SplitSpec
from naive import naive_min_counts


def _raw(user, movie, rating, ts, n_movies=None):
    n_movies = n_movies or int(max(movie)) + 1
    return RawData(
        dataset="synthetic",
        ratings=pl.DataFrame({"userId": np.asarray(user, np.int64), "movieId": np.asarray(movie, np.int64),
                              "rating": np.asarray(rating, np.float32), "timestamp": np.asarray(ts, np.int64)}),
        movies=pl.DataFrame({"movieId": np.arange(n_movies, dtype=np.int64), "title": [f"M{i} (2000)" for i in range(n_movies)],
                             "year": np.full(n_movies, 2000, np.int32), "genres": [["Drama"]] * n_movies}),
        users=None, rating_scale=(1.0, 5.0), rating_step=1.0, source="test", ratings_file="test",
    )


def _triples(ds, split):
    uid, mid = ds.users["userId"].to_numpy(), ds.movies["movieId"].to_numpy()
    s = getattr(ds, split)
    return set(zip(uid[s.user].tolist(), mid[s.movie].tolist(), s.timestamp.tolist()))


def test_min_count_filter_iterates_until_stable():
    # movie 9 has 2 ratings; dropping it (min 3) leaves user 1 with 2 ratings, which (min 3) drops
    # user 1, which leaves movie 2 with 2 ratings, which drops movie 2 ... a chain of rounds
    pairs = [(0, 0), (0, 1), (0, 2), (1, 9), (1, 2), (1, 3), (2, 9), (2, 0), (2, 1), (2, 3),
             (3, 0), (3, 1), (3, 3), (4, 0), (4, 1), (4, 3)]
    user = np.array([p[0] for p in pairs], np.int32)
    movie = np.array([p[1] for p in pairs], np.int32)
    keep, rounds = min_count_mask(user, movie, 5, 10, 3, 3)
    got = [p for p, k in zip(pairs, keep) if k]
    assert got == naive_min_counts(pairs, 3, 3) and rounds >= 2
    assert (0, 2) not in got and all(u != 1 for u, _ in got)
    assert min_count_mask(user, movie, 5, 10, 0, 0) == (None, 0)


# -- prepare: every rating exactly once, definitions respected ------------------------------------
@pytest.mark.parametrize("spec", [
    SplitSpec("random", 0.2, 0.1, seed=5), SplitSpec("user-last", holdout=2, val_fraction=0.1),
    SplitSpec("user-last", holdout=0.25), SplitSpec("time", test_fraction=0.2, val_fraction=0.1), SplitSpec("none"),
])
def test_splits_keep_every_rating_once_and_respect_definitions(tmp_path, small_raw, spec):
    out, summary = prepare(small_raw, spec, name="s", root=tmp_path)
    ds = load(out)
    r = small_raw.ratings
    everything = set(zip(r["userId"].to_list(), r["movieId"].to_list(), r["timestamp"].to_list()))
    parts = [_triples(ds, s) for s in ("train", "val", "test") if ds.split(s) is not None]
    assert sum(len(p) for p in parts) == len(everything) == summary["ratings"]
    assert set().union(*parts) == everything
    for s in ("train", "val", "test"):  # each split sorted by user, then time
        sp = ds.split(s)
        if sp is not None and len(sp):
            key = sp.user.astype(np.int64) * 2**40 + sp.timestamp
            assert np.all(np.diff(key) >= 0)
    if spec.method == "user-last":
        per_user = np.bincount(ds.train.user, minlength=ds.n_users)
        assert per_user.min() >= 1
        for u in range(0, ds.n_users, 37):  # held-out ratings are each user's latest
            latest_train = ds.train.timestamp[ds.train.user == u].max()
            held = np.concatenate([ds.test.timestamp[ds.test.user == u]] + ([ds.val.timestamp[ds.val.user == u]] if ds.val else []))
            assert held.min() >= latest_train
            if ds.val is not None and (ds.val.user == u).any():
                assert ds.test.timestamp[ds.test.user == u].min() >= ds.val.timestamp[ds.val.user == u].max()
        if spec.holdout == 2:
            assert np.all(np.bincount(ds.test.user, minlength=ds.n_users) == 2)
    if spec.method == "time":
        cutoff = ds.manifest.split["cutoff"]
        assert ds.test.timestamp.min() >= cutoff > ds.train.timestamp.max()
        assert ds.val.timestamp.min() >= ds.manifest.split["val_cutoff"] > ds.train.timestamp.max()
    if spec.method == "random":
        assert 0.17 < len(ds.test) / summary["ratings"] < 0.23 and 0.08 < len(ds.val) / summary["ratings"] < 0.12


def test_duplicates_keep_the_latest_and_are_counted(tmp_path):
    raw = _raw([1, 1, 1, 2, 2, 1], [5, 6, 5, 5, 5, 5], [1, 2, 3, 4, 5, 2], [10, 11, 30, 5, 5, 20])
    out, summary = prepare(raw, SplitSpec("none"), name="d", root=tmp_path)
    ds = load(out)
    assert summary["duplicates_dropped"] == 3 and ds.manifest.counts["duplicates_dropped"] == 3
    got = sorted(zip(ds.users["userId"].to_numpy()[ds.train.user].tolist(), ds.movies["movieId"].to_numpy()[ds.train.movie].tolist(),
                     ds.train.rating.tolist()))
    # user 1 movie 5: latest (t=30) is 3; user 2 movie 5: equal times, the later line (5) wins
    assert got == [(1, 5, 3.0), (1, 6, 2.0), (2, 5, 5.0)]


def test_filters_through_prepare_and_unknown_movie(tmp_path):
    pairs = [(0, 0), (0, 1), (0, 2), (1, 9), (1, 2), (1, 3), (2, 9), (2, 0), (2, 1), (2, 3),
             (3, 0), (3, 1), (3, 3), (4, 0), (4, 1), (4, 3)]
    raw = _raw([p[0] for p in pairs], [p[1] for p in pairs], [3] * len(pairs), list(range(len(pairs))))
    out, summary = prepare(raw, SplitSpec("none"), name="f", root=tmp_path, min_user_ratings=3, min_movie_ratings=3)
    ds = load(out)
    want = naive_min_counts(pairs, 3, 3)
    got = sorted(zip(ds.users["userId"].to_numpy()[ds.train.user].tolist(), ds.movies["movieId"].to_numpy()[ds.train.movie].tolist()))
    assert got == sorted(want) and summary["filtered_out"] == len(pairs) - len(want)
    assert ds.n_users == len({u for u, _ in want}) and ds.n_movies == len({m for _, m in want})
    from mfrec.errors import DataError

    with pytest.raises(DataError, match="no ratings left"):
        prepare(raw, SplitSpec("none"), name="g", root=tmp_path, min_user_ratings=50)
    bad = _raw([1], [7], [3], [1], n_movies=3)
    with pytest.raises(DataError, match="movie id 7 is not in the movies file"):
        prepare(bad, SplitSpec("none"), name="h", root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_dense_index_by_table_and_for_huge_or_negative_ids():
    from mfrec.data.prepare import dense_index

    ids, idx = dense_index(np.array([7, 3, 7, 11], np.int32))
    assert ids.tolist() == [3, 7, 11] and idx.tolist() == [1, 0, 1, 2] and idx.dtype == np.int32
    ids, idx = dense_index(np.array([10**12, -5, 10**12], np.int64))  # no lookup table: np.unique
    assert ids.tolist() == [-5, 10**12] and idx.tolist() == [1, 0, 1]
