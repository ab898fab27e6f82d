"""Data_processing.py (``mfrec prepare``) through click's CliRunner: real formats, raw round trips, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mfrec.cli.prepare import prepare as prepare_cmd
from mfrec.data import load
from test_data_files import ML100K_RATINGS, write_ml1m, write_ml25m, write_ml100k, zip_folder


def run(tmp_path: Path, *args: str):
    result = CliRunner().invoke(
        prepare_cmd, ["--data-root", str(tmp_path / "Training_data"), "--data-dir", str(tmp_path / "Data"), "--quiet", *args]
    )
    return result


def leftovers(tmp_path: Path) -> list[str]:
    """Everything under Training_data/ (a failed run must leave neither the folder nor a temporary one)."""
    root = tmp_path / "Training_data"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_ml100k_u1_split_is_exactly_u1_test(tmp_path):
    res = run(tmp_path, "--dataset", "ml-100k", "--source", str(write_ml100k(tmp_path / "ml-100k")), "--split", "u1")
    assert res.exit_code == 0, res.output
    assert "train 7 / val 0 / test 3" in res.output
    ds = load(tmp_path / "Training_data" / "ml-100k-u1")
    uid, mid = ds.users["userId"].to_numpy(), ds.movies["movieId"].to_numpy()
    test = sorted(zip(uid[ds.test.user].tolist(), mid[ds.test.movie].tolist(), ds.test.rating.tolist()))
    assert test == sorted((u, m, float(r)) for u, m, r, _, t in ML100K_RATINGS if t)
    assert ds.manifest.split["method"] == "u1" and ds.manifest.split["test_file"] == "u1.test"
    assert ds.movies.filter(ds.movies["movieId"] == 543)["title"][0] == "Misérables, Les (1995)"
    assert ds.users.columns == ["user", "userId", "gender", "age", "occupation", "zip"]


def test_synthetic_write_raw_round_trips_through_both_readers(tmp_path):
    for fmt, dataset in (("ml-25m", "ml-25m"), ("ml-1m", "ml-1m")):
        raw_dir = tmp_path / f"raw-{fmt}"
        res = run(tmp_path, "--users", "60", "--movies", "40", "--ratings", "900", "--seed", "3", "--name", f"s-{fmt}",
                  "--split", "none", "--write-raw", str(raw_dir), "--raw-format", fmt,
                  *(["--half-stars"] if fmt == "ml-25m" else []))
        assert res.exit_code == 0, res.output
        res = run(tmp_path, "--dataset", dataset, "--source", str(raw_dir), "--split", "none", "--name", f"r-{fmt}")
        assert res.exit_code == 0, res.output
        a, b = load(tmp_path / "Training_data" / f"s-{fmt}"), load(tmp_path / "Training_data" / f"r-{fmt}")
        for key in ("user", "movie", "rating", "timestamp"):
            np.testing.assert_array_equal(getattr(a.ratings, key), getattr(b.ratings, key))
        assert a.movies.select("movieId", "title", "year", "genres").equals(b.movies.select("movieId", "title", "year", "genres"))
        if fmt == "ml-1m":
            assert a.users.equals(b.users)  # demographics survive users.dat


def test_ids_from_makes_an_ml1m_folder_over_real_ids_with_demographics(tmp_path):
    meta = write_ml1m(tmp_path / "meta")
    (meta / "ratings.dat").unlink()  # like ml-1m-meta: movies.dat and users.dat only
    out = tmp_path / "gen"
    res = run(tmp_path, "--ids-from", str(meta), "--ratings", "2", "--write-raw", str(out), "--raw-format", "ml-1m",
              "--split", "none", "--name", "gen")
    assert res.exit_code == 0, res.output
    assert (out / "movies.dat").read_bytes() == (meta / "movies.dat").read_bytes()
    assert (out / "users.dat").read_bytes() == (meta / "users.dat").read_bytes()
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    for name in ("movies.dat", "users.dat"):
        shutil.copy(meta / name, folder / name)
    shutil.copy(out / "ratings.dat", folder / "ratings.dat")
    res = run(tmp_path, "--dataset", "ml-1m", "--source", str(folder), "--split", "none", "--name", "real-ids")
    assert res.exit_code == 0, res.output
    ds = load(tmp_path / "Training_data" / "real-ids")
    assert set(ds.users["userId"].to_list()) <= {1, 2}
    assert ds.users.filter(ds.users["userId"] == 2).select("gender", "age", "occupation").row(0) == ("M", 56, 16)
    assert set(ds.movies["movieId"].to_list()) <= {1, 2, 3}


def test_user_last_and_time_splits_through_the_cli(tmp_path):
    res = run(tmp_path, "--users", "50", "--movies", "60", "--ratings", "1500", "--split", "user-last", "--holdout", "2")
    assert res.exit_code == 0, res.output
    ds = load(tmp_path / "Training_data" / "synthetic-user-last")
    assert len(ds.test) == 2 * ds.n_users
    res = run(tmp_path, "--users", "50", "--movies", "60", "--ratings", "1500", "--split", "time", "--test-fraction", "0.25")
    assert res.exit_code == 0, res.output
    ds = load(tmp_path / "Training_data" / "synthetic-time")
    assert ds.train.timestamp.max() < ds.test.timestamp.min()


# -- bad input: one sentence, non-zero exit, nothing left behind --------------------------------
def _bad_ratings(tmp_path: Path, text: str) -> Path:
    folder = write_ml25m(tmp_path / "bad")
    (folder / "ratings.csv").write_text(text)
    return folder


BAD_CSV = [
    ("userId,movieId,rating,timestamp\n1,1,4.0,1147880044\n1,2,x,1147868817\n", r"ratings.csv line 3: the rating is not a number"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,1147880044\n1,2,3.5\n", r"ratings.csv line 3: .*truncated"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,1147880044\n1,2,7.0,1147868817\n", r"ratings.csv line 3: rating 7 is not on the 0.5..5 scale"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,1147880044\n\n1,2,3.0,1147868817\n", r"ratings.csv line 3 is empty"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,1147880044,9\n", r"ratings.csv line 2: there is more on the line"),
    ("", r"ratings.csv is empty"),
    ("userId,movieId,rating,timestamp\n", r"ratings.csv has no ratings \(only the header\)"),
    ("user,movie,rating\n1,1,4\n", r"ratings.csv line 1: expected the header"),
    ("userId,movieId,rating,timestamp\n1,99,4.0,1147880044\n", r"movie id 99 is not in the movies file"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,1\n3000000000,1,4.0,1\n", r"line 3: a user or movie id is negative or above"),
]


@pytest.mark.parametrize("text, message", BAD_CSV)
def test_bad_ratings_file_gives_one_sentence_and_leaves_nothing(tmp_path, text, message):
    res = run(tmp_path, "--dataset", "ml-25m", "--source", str(_bad_ratings(tmp_path, text)), "--name", "bad")
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    import re

    assert re.search(message, res.output), res.output
    assert "Traceback" not in res.output and res.output.count("\n") == 1
    assert leftovers(tmp_path) == []


def test_bad_dat_and_100k_lines_name_file_and_line(tmp_path):
    folder = write_ml1m(tmp_path / "m1")
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1:2::3::978302109\n")
    res = run(tmp_path, "--dataset", "ml-1m", "--source", str(folder))
    assert res.exit_code == 2 and "ratings.dat line 2: the user id" in res.output, res.output
    (folder / "ratings.dat").write_text("1::1::6::978300760\n")
    res = run(tmp_path, "--dataset", "ml-1m", "--source", str(folder))
    assert res.exit_code == 2 and "ratings.dat line 1: rating 6 is not on the 1..5 scale in whole stars" in res.output
    (folder / "ratings.dat").write_text("1::1::5::978300760\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::X::56::16::70072\n")
    res = run(tmp_path, "--dataset", "ml-1m", "--source", str(folder))
    assert res.exit_code == 2 and "users.dat line 2: gender 'X' is not M or F" in res.output, res.output
    h = write_ml100k(tmp_path / "h")
    (h / "u.item").write_bytes((h / "u.item").read_bytes().replace(b"|0|0|0|1|", b"|0|0|2|1|", 1))
    res = run(tmp_path, "--dataset", "ml-100k", "--source", str(h))
    assert res.exit_code == 2 and "u.item line 1: genre flag '2'" in res.output, res.output
    assert leftovers(tmp_path) == []


def test_missing_file_corrupt_zip_and_unknown_dataset(tmp_path):
    folder = write_ml25m(tmp_path / "m")
    (folder / "movies.csv").unlink()
    res = run(tmp_path, "--dataset", "ml-25m", "--source", str(folder))
    assert res.exit_code == 2 and "has no movies.csv" in res.output, res.output
    res = run(tmp_path, "--dataset", "ml-25m", "--source", str(tmp_path / "nowhere"))
    assert res.exit_code == 2 and "does not exist" in res.output
    z = zip_folder(write_ml25m(tmp_path / "z"), tmp_path / "ml-25m.zip", "ml-25m")
    (tmp_path / "cut.zip").write_bytes(z.read_bytes()[: z.stat().st_size // 2])  # truncated download
    res = run(tmp_path, "--dataset", "ml-25m", "--source", str(tmp_path / "cut.zip"))
    assert res.exit_code == 2 and "is not a readable zip file" in res.output, res.output
    data = bytearray(z.read_bytes())
    i = data.index(b"1,1,4.0") if b"1,1,4.0" in data else 60  # stored deflated: flip bytes inside the first member
    data[i - 30:i - 20] = b"\x00" * 10
    (tmp_path / "bad.zip").write_bytes(bytes(data))
    res = run(tmp_path, "--dataset", "ml-25m", "--source", str(tmp_path / "bad.zip"))
    assert res.exit_code == 2 and ("corrupt" in res.output or "not a readable zip" in res.output), res.output
    res = run(tmp_path, "--dataset", "ml-5m")
    assert res.exit_code == 2 and "'ml-5m' is not one of" in res.output
    assert leftovers(tmp_path) == []


def test_rerun_replaces_only_on_success(tmp_path):
    src = write_ml25m(tmp_path / "m")
    assert run(tmp_path, "--dataset", "ml-25m", "--source", str(src), "--name", "keep").exit_code == 0
    before = (tmp_path / "Training_data" / "keep" / "manifest.json").read_text()
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,9,1\n")
    assert run(tmp_path, "--dataset", "ml-25m", "--source", str(src), "--name", "keep").exit_code == 2
    assert (tmp_path / "Training_data" / "keep" / "manifest.json").read_text() == before
    assert leftovers(tmp_path) == ["keep"]


def test_prepare_writes_block_files_for_a_cluster(tmp_path):
    from mfrec.data.blocks import find_blocks, read_block

    out = CliRunner().invoke(prepare_cmd, ["--users", "80", "--movies", "60", "--ratings", "1500", "--name", "blk",
                                    "--data-root", str(tmp_path), "--blocks", "3", "--quiet"])
    assert out.exit_code == 0, out.output
    ds = load(tmp_path / "blk")
    folder = find_blocks(ds, 3)
    assert folder is not None and "blocks" in out.output
    values = np.concatenate([read_block(folder, "movie", b)["values"] for b in range(3)])
    np.testing.assert_array_equal(values, np.asarray(ds.train_by_movie.values))
