"""IMDB enrichment on small generated TSV files: the links.csv join, nulls, names, clear errors."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from mfrec.data.imdb import find_links, read_links, tconst
from mfrec.errors import DataError


def _write_release(tmp_path):
    """A small ml-25m-layout release (synthetic ratings) plus links.csv for its first movies."""
    from mfrec.data.synthetic import SyntheticSpec, generate
    from mfrec.data.writers import write_raw

    raw = generate(SyntheticSpec(n_users=40, n_movies=12, n_ratings=200, seed=5))
    src = write_raw(raw, tmp_path / "release", "ml-25m")
    ids = sorted(raw.movies["movieId"].to_list())
    # four linked movies: imdbIds needing zero padding, one 8-digit id, one without IMDB rows
    links = {ids[0]: 114709, ids[1]: 113497, ids[2]: 12345678, ids[3]: 999}
    lines = ["movieId,imdbId,tmdbId"] + [f"{m},{i},1" for m, i in links.items()] + [f"{ids[4]},,2"]
    (src / "links.csv").write_text("\n".join(lines) + "\n")
    return src, ids


def _write_imdb(folder, gz=False):
    folder.mkdir()
    basics = ("tconst\ttitleType\tprimaryTitle\truntimeMinutes\tgenres\n"
              "tt0114709\tmovie\tToy Story\t81\tAdventure,Animation,Comedy\n"
              "tt0113497\tmovie\tJumanji\t\\N\t\\N\n"
              "tt12345678\tmovie\tLong Id\t140\tDrama\n"
              "tt7777777\tmovie\tUnrelated\t90\tHorror\n")
    crew = ("tconst\tdirectors\twriters\n"
            "tt0114709\tnm0005124\tnm0000001\n"
            "tt0113497\tnm0002653,nm0005124\t\\N\n"
            "tt12345678\t\\N\t\\N\n")
    names = "nconst\tprimaryName\tbirthYear\nnm0005124\tJohn Lasseter\t1957\nnm0002653\tJoe Johnston\t1950\n"
    for name, text in (("title.basics", basics), ("title.crew", crew), ("name.basics", names)):
        if gz:
            with gzip.open(folder / f"{name}.tsv.gz", "wt") as f:
                f.write(text)
        else:
            (folder / f"{name}.tsv").write_text(text)
    return folder


def test_tconst_zero_pads_to_seven_digits():
    assert tconst(114709) == "tt0114709"
    assert tconst(999) == "tt0000999"
    assert tconst(12345678) == "tt12345678"


@pytest.mark.parametrize("gz", [False, True])
def test_prepare_with_imdb_joins_runtime_genres_directors(tmp_path, gz):
    import polars as pl

    from mfrec.cli.prepare import prepare

    src, ids = _write_release(tmp_path)
    imdb = _write_imdb(tmp_path / "imdb", gz=gz)
    res = CliRunner().invoke(prepare, ["--dataset", "ml-latest-small", "--source", str(src), "--imdb", str(imdb),
                                       "--split", "user-last", "--name", "x", "--data-root", str(tmp_path / "td"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "4 movies linked" in res.output
    t = pl.read_parquet(tmp_path / "td" / "x" / "imdb.parquet")
    movies = pl.read_parquet(tmp_path / "td" / "x" / "movies.parquet")
    by_id = {r["movieId"]: r for r in t.iter_rows(named=True)}
    assert set(by_id) == set(ids[:4])  # the movie with an empty imdbId is not linked
    toy = by_id[ids[0]]
    assert toy["tconst"] == "tt0114709" and toy["runtime"] == 81
    assert toy["imdb_genres"] == ["Adventure", "Animation", "Comedy"] and toy["directors"] == ["John Lasseter"]
    jum = by_id[ids[1]]
    assert jum["runtime"] is None and jum["imdb_genres"] == [] and jum["directors"] == ["Joe Johnston", "John Lasseter"]
    assert by_id[ids[2]]["runtime"] == 140 and by_id[ids[2]]["directors"] == []
    assert by_id[ids[3]]["runtime"] is None  # linked, but not in the IMDB files
    # the movie index column agrees with movies.parquet
    for r in t.iter_rows(named=True):
        assert movies.filter(pl.col("movie") == r["movie"])["movieId"][0] == r["movieId"]
    manifest = json.loads((tmp_path / "td" / "x" / "manifest.json").read_text())
    assert manifest["imdb"]["linked"] == 4 and manifest["imdb"]["with_runtime"] == 2


def test_dataset_without_links_says_so(tmp_path):
    from mfrec.cli.prepare import prepare

    src, _ = _write_release(tmp_path)
    (src / "links.csv").unlink()
    imdb = _write_imdb(tmp_path / "imdb")
    res = CliRunner().invoke(prepare, ["--dataset", "ml-latest-small", "--source", str(src), "--imdb", str(imdb),
                                       "--data-root", str(tmp_path / "td")])
    assert res.exit_code == 2
    assert "has no links.csv" in res.output
    assert not (tmp_path / "td").exists() or not any((tmp_path / "td").iterdir())  # failed before writing
    res = CliRunner().invoke(prepare, ["--imdb", str(imdb), "--data-root", str(tmp_path / "td2"), "--ratings", "60",
                                       "--users", "20", "--movies", "10"])
    assert res.exit_code == 2 and "synthetic is generated" in res.output


def test_bad_links_and_missing_imdb_files(tmp_path):
    with pytest.raises(DataError, match="line 3"):
        read_links("links.csv", b"movieId,imdbId\n1,114709\nx,2\n")
    with pytest.raises(DataError, match="header"):
        read_links("links.csv", b"a,b\n1,2\n")
    from mfrec.data.imdb import imdb_table

    src, _ = _write_release(tmp_path)
    import polars as pl

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="title.basics"):
        imdb_table(pl.DataFrame({"movie": [0], "movieId": [1]}), read_links("l", b"movieId,imdbId\n1,5\n"), tmp_path / "empty")
    with pytest.raises(DataError, match="has no links.csv"):
        find_links(tmp_path / "empty", "ml-100k")
