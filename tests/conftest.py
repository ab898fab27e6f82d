"""Shared fixtures: small datasets generated on the fly (the suite never needs real MovieLens files)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def small_raw():
    """A small synthetic dataset as RawData (300 users, 200 movies, 12,000 ratings)."""
    from mfrec.data.synthetic import SyntheticSpec, generate

    return generate(SyntheticSpec(n_users=300, n_movies=200, n_ratings=12_000, seed=7))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, small_raw):
    """small_raw prepared with a random 70/10/20 split, loaded from its Training_data folder."""
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec

    root = tmp_path_factory.mktemp("Training_data")
    out, _ = prepare(small_raw, SplitSpec("random", 0.2, 0.1, seed=3), name="small", root=root)
    return load(out)


@pytest.fixture(scope="session")
def dask_scheduler():
    """The address of a LocalCluster (2 worker processes, one thread each, on 127.0.0.1) shared by
    the whole test session; the tests skip where the dask extra is not installed."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0")
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
