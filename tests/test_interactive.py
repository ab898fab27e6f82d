"""The interactive loop's `save` (the last list, into Predictions/ like Inference.py) and its genre/years filters."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pytest
from test_inference import make_run

from mfrec.inference.interactive import Session, run_loop


@pytest.fixture(scope="module")
def rec(tmp_path_factory, small_dataset):
    from mfrec import load_experiment

    run = make_run(tmp_path_factory.mktemp("Experiments_"), small_dataset, "mf-genre", name="loop")
    return load_experiment(run).recommender


def _session(rec, tmp_path, **kw):
    s = Session(rec, top=kw.pop("top", 6), out_dir=tmp_path / "Predictions", **kw)
    for m in (0, 1, 2):
        assert s.handle(f"add {int(rec.movie_id_array[m])} 5").startswith("added")
    return s


def test_save_writes_the_last_list_shown_like_inference_py(rec, tmp_path):
    s = _session(rec, tmp_path)
    assert "nothing to save yet" in s.handle("save")
    shown = s.handle("recommend 5")
    out = tmp_path / "Predictions" / rec.run_name
    reply = s.handle("save")
    assert reply == f"wrote {out / 'made-up-user.csv'} and made-up-user.parquet"
    csv, parquet = pl.read_csv(out / "made-up-user.csv"), pl.read_parquet(out / "made-up-user.parquet")
    assert csv.height == parquet.height == 5 and csv["movieId"].to_list() == parquet["movieId"].to_list()
    for title in csv["title"].to_list():
        assert title[:30] in shown  # the list on the screen is the list in the files
    # a default name never replaces an earlier list (it is numbered); a label given replaces its file
    assert s.handle("save") == f"wrote {out / 'made-up-user-2.csv'} and made-up-user-2.parquet"
    assert "replacing" not in s.handle("save mine")
    assert s.handle("save mine").endswith("(replacing the earlier mine.csv)")
    title = rec.title(0)
    s.handle(f"similar {title}")
    assert s.handle("save near") == f"wrote {out / 'near.csv'} and near.parquet"
    assert pl.read_csv(out / "near.csv")["why"][0].startswith("cosine")
    s.handle("popular")
    s.handle('save "most rated"')
    assert pl.read_csv(out / "most-rated.csv").height == 6
    assert "error:" in s.handle("save ???")  # a label with no usable characters is one sentence
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}.{e}" for n in ("made-up-user", "made-up-user-2", "mine", "near", "most-rated") for e in ("csv", "parquet"))


def _genres_of(rec, csv_or_frame):
    ids = csv_or_frame["movieId"].to_numpy()
    index = {int(i): m for m, i in enumerate(rec.movie_id_array)}
    return [rec.genre_lists[index[int(i)]] for i in ids]


def test_genre_and_years_filter_every_list_until_cleared(rec, small_dataset, tmp_path):
    s = _session(rec, tmp_path, top=8, min_ratings=0)  # the genre and years filters alone
    counts = np.asarray(small_dataset.genre_matrix.sum(axis=0)).ravel()
    genre = small_dataset.genres[int(np.argsort(counts)[len(counts) // 2])]
    assert s.handle(f"genre {genre.lower()}") == f"filter: genre {genre}"
    for cmd in ("recommend", f"similar {rec.title(0)}", "popular"):
        s.handle(cmd)
        assert len(s.last) > 0
        assert all(genre in gs for gs in _genres_of(rec, s.last.table)), cmd
    years = sorted(y for y in rec.years if y is not None)
    lo, hi = years[len(years) // 4], years[3 * len(years) // 4]
    assert s.handle(f"years {lo}-{hi}") == f"filter: genre {genre}, years {lo}-{hi}"
    s.handle("recommend")
    assert len(s.last) > 0
    assert all(lo <= y <= hi for y in s.last.table["year"].to_list())
    assert all(genre in gs for gs in _genres_of(rec, s.last.table))
    assert "filter: genre" in s.handle("show")
    # a bad value is one sentence, and the filters stay as they were
    assert "error: unknown genre 'Nonsense'" in s.handle("genre Nonsense")
    assert "error:" in s.handle("years 1999-1990") and s.filters.years == (lo, hi)
    assert s.handle("genre") == f"filter: years {lo}-{hi}"
    assert s.handle("years") == "filter: none (every movie)"
    s.handle("recommend 30")
    assert len({g for gs in _genres_of(rec, s.last.table) for g in gs}) > 1


def test_genre_takes_several_names_and_the_flags_min_ratings_stays(rec, small_dataset, tmp_path):
    s = _session(rec, tmp_path, min_ratings=5)
    a, b = small_dataset.genres[:2]
    assert s.handle(f"genre {a}, {b}") == f"filter: genre {a} or {b}, at least 5 training ratings"
    assert s.handle(f"genre {a} {b}") == f"filter: genre {a} or {b}, at least 5 training ratings"
    s.handle("recommend")
    assert all(a in gs or b in gs for gs in _genres_of(rec, s.last.table))
    assert all(rec.popularity[m] >= 5 for m in [list(rec.movie_id_array).index(i) for i in s.last.table["movieId"]])


def test_the_loop_saves_into_predictions_under_the_working_folder(rec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    said: list[str] = []
    script = f"add {int(rec.movie_id_array[0])}\ngenre {rec.dataset.genres[0]}\nrecommend 3\nsave mine\nexit\n"
    run_loop(rec, io.StringIO(script), lambda text="", nl=True: said.append(text), top=3)
    out = tmp_path / "Predictions" / rec.run_name
    assert f"wrote {out.relative_to(tmp_path) / 'mine.csv'} and mine.parquet" in said
    assert pl.read_csv(out / "mine.csv").height == 3
    assert "save [label]" in Session(rec).handle("help") and "genre [G, G ...]" in Session(rec).handle("help")


def test_add_and_similar_say_what_a_partial_title_matched(rec, tmp_path):
    from test_inference import partial_title

    m, partial = partial_title(rec)
    s = Session(rec, top=3, out_dir=tmp_path / "Predictions")
    reply = s.handle(f"add {partial}")
    assert reply.startswith(f"added {rec.title(m)} = ") and f"'{partial}' -> {rec.titles.describe(m)} (partial title" in reply
    reply = s.handle(f"add {int(rec.movie_id_array[0])} 4")  # an id: no note
    assert "\n" not in reply
    assert f"title: '{partial}' -> {rec.titles.describe(m)}" in s.handle(f"similar {partial}")
