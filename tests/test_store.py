"""The Training_data store: what prepare writes is what load returns, and nothing half-written stays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mfrec.data import load
from mfrec.data.prepare import prepare
from mfrec.data.splits import SplitSpec
from mfrec.data.store import IdMap
from mfrec.errors import DataError, UnknownIdError


def test_every_rating_lands_in_exactly_one_split(small_raw, small_dataset):
    ds = small_dataset
    assert len(ds.train) + len(ds.val) + len(ds.test) == small_raw.ratings.height
    # (user, movie) pairs are unique across all splits and match the raw ratings one to one
    uid = ds.users["userId"].to_numpy()[np.asarray(ds.ratings.user)]
    mid = ds.movies["movieId"].to_numpy()[np.asarray(ds.ratings.movie)]
    got = sorted(zip(uid.tolist(), mid.tolist(), np.asarray(ds.ratings.rating).tolist()))
    raw = small_raw.ratings
    want = sorted(zip(raw["userId"].to_list(), raw["movieId"].to_list(), raw["rating"].to_list()))
    assert got == want


def test_arrays_are_memory_mapped_and_typed(small_dataset):
    ds = small_dataset
    assert isinstance(ds.ratings.user.base, np.memmap) or isinstance(ds.ratings.user, np.memmap)
    assert ds.train.user.dtype == np.int32 and ds.train.movie.dtype == np.int32
    assert ds.train.rating.dtype == np.float32 and ds.train.timestamp.dtype == np.int64


def test_csr_by_user_and_by_movie_describe_the_train_split(small_dataset):
    ds = small_dataset
    tr = ds.train
    byu, bym = ds.train_by_user, ds.train_by_movie
    assert byu.indptr[-1] == len(tr) == bym.indptr[-1]
    for u in (0, 5, ds.n_users - 1):
        a, b = byu.indptr[u], byu.indptr[u + 1]
        assert np.all(tr.user[a:b] == u)
    dense_u = np.zeros((ds.n_users, ds.n_movies), np.float32)
    dense_u[tr.user, tr.movie] = tr.rating
    dense_m = np.zeros_like(dense_u)
    rows = np.repeat(np.arange(ds.n_movies), np.diff(bym.indptr))
    dense_m[bym.indices, rows] = bym.values
    np.testing.assert_array_equal(dense_u, dense_m)


def test_genre_incidence_matches_movies_table(small_dataset):
    ds = small_dataset
    g = ds.movie_genres
    for m in (0, 17, ds.n_movies - 1):
        names = [ds.genres[i] for i in g.indices[g.indptr[m]:g.indptr[m + 1]]]
        assert sorted(names) == sorted(ds.movies["genres"][m].to_list())


def test_same_seed_gives_byte_identical_folders(tmp_path, small_raw):
    from mfrec.data.synthetic import SyntheticSpec, generate

    paths = []
    for i in range(2):
        raw = generate(SyntheticSpec(n_users=120, n_movies=80, n_ratings=3000, seed=11))
        out, _ = prepare(raw, SplitSpec("random", seed=1), name=f"d{i}", root=tmp_path)
        paths.append(out)
    m0 = json.loads((paths[0] / "manifest.json").read_text())["checksums"]
    m1 = json.loads((paths[1] / "manifest.json").read_text())["checksums"]
    assert m0 == m1


def test_failed_prepare_leaves_nothing_behind_and_keeps_the_old_folder(tmp_path, small_raw):
    import polars as pl

    out, _ = prepare(small_raw, SplitSpec("random"), name="keep", root=tmp_path)
    before = (out / "manifest.json").read_text()
    bad = small_raw.ratings.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(9.0).otherwise(pl.col("rating")).alias("rating"))
    broken = type(small_raw)(**{**small_raw.__dict__, "ratings": bad})
    with pytest.raises(DataError, match="outside"):
        prepare(broken, SplitSpec("random"), name="keep", root=tmp_path)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_load_by_name_and_clear_error_for_unknown(tmp_path, small_raw):
    prepare(small_raw, SplitSpec("random"), name="byname", root=tmp_path)
    assert load("byname", data_root=tmp_path).n_users == 300
    with pytest.raises(DataError, match="no prepared dataset 'nope'.*byname"):
        load("nope", data_root=tmp_path)


def test_idmap_raises_on_unknown_ids():
    m = IdMap(np.array([10, 3, 7]), "movie")
    assert m.index_of(7) == 2
    np.testing.assert_array_equal(m.index_of([3, 10]), [1, 0])
    with pytest.raises(UnknownIdError, match="unknown movie id: 5"):
        m.index_of(5)
    assert 5 not in m and 10 in m
