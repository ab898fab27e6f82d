"""write_raw: RawData back out in the ml-25m CSV and ml-1m '::' layouts, read back by the real readers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mfrec.data.movielens import read_dataset
from mfrec.data.raw import RawData
from mfrec.data.writers import write_raw
from mfrec.errors import DataError


def _raw(titles, step=0.5, users=True):
    n = len(titles)
    return RawData(
        dataset="synthetic",
        ratings=pl.DataFrame({"userId": np.array([1, 1, 2], np.int64), "movieId": np.array([1, 2, n], np.int64),
                              "rating": np.array([4.0, 3.5 if step < 1 else 3.0, 1.0], np.float32),
                              "timestamp": np.array([100, 200, 300], np.int64)}),
        movies=pl.DataFrame({"movieId": np.arange(1, n + 1, dtype=np.int64), "title": titles,
                             "year": [1995] * n, "genres": [["Comedy", "Drama"]] + [[]] * (n - 1)},
                            schema_overrides={"year": pl.Int32}),
        users=pl.DataFrame({"userId": [1, 2], "gender": ["F", "M"], "age": [25, 56], "occupation": [4, 16], "zip": ["02139", "T8H1N"]},
                           schema_overrides={"age": pl.Int32, "occupation": pl.Int32}) if users else None,
        rating_scale=(0.5 if step < 1 else 1.0, 5.0), rating_step=step, source="test",
    )


TITLES = ["American President, The (1995)", 'Babylon 5, "The Gathering" (1995)', "Misérables, Les (1995)"]


def test_ml25m_layout_quotes_titles_and_round_trips(tmp_path):
    raw = _raw(TITLES)
    out = write_raw(raw, tmp_path / "csv", "ml-25m")
    text = (out / "movies.csv").read_text(encoding="utf-8")
    assert '1,"American President, The (1995)",Comedy|Drama\n' in text
    assert '2,"Babylon 5, ""The Gathering"" (1995)",(no genres listed)\n' in text
    assert (out / "ratings.csv").read_text().splitlines()[:3] == ["userId,movieId,rating,timestamp", "1,1,4.0,100", "1,2,3.5,200"]
    back = read_dataset("ml-25m", source=out)
    assert back.ratings.equals(raw.ratings)
    assert back.movies.select("movieId", "title", "genres").equals(raw.movies.select("movieId", "title", "genres"))
    assert sorted(p.name for p in out.iterdir()) == ["movies.csv", "ratings.csv"]  # no temporary files left


def test_ml1m_layout_is_latin1_with_users_and_round_trips(tmp_path):
    raw = _raw(TITLES, step=1.0)
    out = write_raw(raw, tmp_path / "dat", "ml-1m")
    assert "3::Misérables, Les (1995)::(no genres listed)\n".encode("latin-1") in (out / "movies.dat").read_bytes()
    assert (out / "ratings.dat").read_text().splitlines() == ["1::1::4::100", "1::2::3::200", "2::3::1::300"]
    assert (out / "users.dat").read_text() == "1::F::25::4::02139\n2::M::56::16::T8H1N\n"
    back = read_dataset("ml-1m", source=out)
    assert back.ratings.equals(raw.ratings)
    assert back.users.equals(raw.users)
    assert back.movies["title"].to_list() == TITLES


def test_ml1m_layout_half_stars_like_ml10m_and_bad_input(tmp_path):
    out = write_raw(_raw(TITLES, users=False), tmp_path / "half", "ml-1m")
    assert (out / "ratings.dat").read_text().splitlines()[1] == "1::2::3.5::200"
    assert not (out / "users.dat").exists()
    assert read_dataset("ml-10m", source=out).ratings["rating"].to_list() == [4.0, 3.5, 1.0]
    with pytest.raises(DataError, match="cannot be written in ISO-8859-1"):
        write_raw(_raw(["Spirited Away (千と千尋の神隠し) (2001)"], step=1.0), tmp_path / "cjk", "ml-1m")
    with pytest.raises(DataError, match="unknown raw format 'parquet'"):
        write_raw(_raw(TITLES), tmp_path / "x", "parquet")
    with pytest.raises(DataError, match="unknown dataset 'ml-5m'"):
        read_dataset("ml-5m", source=tmp_path)
