"""``prepare --engine polars`` and ``--engine stream`` write the same bytes as the Numba engine, and fail with the same sentence.

The stream engine runs here with a budget of a few MB (``SMALL_BUDGET``), so the 100,000 ratings
go through several user partitions and the by-movie index through several movie blocks.

The data is generated in ML-100K shape (943 users, 1,682 movies, 100,000 ratings), written in each
ratings layout the readers know (``u.data`` tabs, ``ratings.dat`` ``::``, ``ratings.csv``), with
duplicate (user, movie) ratings added: later ones, older ones and ones on the same timestamp, so
"keep the latest, the later line on a tie" is exercised.
"""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest

from mfrec.data.movielens import read_dataset
from mfrec.data.prepare import prepare
from mfrec.data.splits import SplitSpec
from mfrec.errors import DataError
from test_data_files import RATINGS_HEADER, write_ml1m, write_ml25m, write_ml100k

SPLITS = [
    SplitSpec("random", test_fraction=0.2, val_fraction=0.1, seed=7),
    SplitSpec("user-last", holdout=3, val_fraction=0.1),
    SplitSpec("user-last", holdout=0.25),
    SplitSpec("time", test_fraction=0.15, val_fraction=0.1),
    SplitSpec("time", cutoff=976_000_000.0),
    SplitSpec("none"),
]
LAYOUTS = {"ml-100k": ("u.data", "\t"), "ml-1m": ("ratings.dat", "::"), "ml-25m": ("ratings.csv", ",")}
OTHER_ENGINES = ("polars", "stream")
ROW_BYTES = 60  # what the tests let one rating of a partition cost
SMALL_BUDGET = 20_000 * ROW_BYTES  # 100,000 ratings in 5 or 6 partitions, the by-movie index in 2 blocks


@pytest.fixture(autouse=True)
def small_stream_budgets(monkeypatch):
    """Let the stream engine take budgets below its floor, so that tests run it in several partitions."""
    import mfrec.data.stream as stream

    monkeypatch.setattr(stream, "MIN_BUDGET", 0)
    monkeypatch.setattr(stream, "ROW_BYTES", ROW_BYTES)


def _ratings(seed: int = 3):
    """ML-100K-shaped ratings with 2,000 duplicate pairs: newer, older and same-second copies."""
    from mfrec.data.synthetic import SHAPES, SyntheticSpec, generate

    nu, nm, n = SHAPES["ml-100k"]
    raw = generate(SyntheticSpec(nu, nm, n, seed))
    r = raw.ratings
    u, m = r["userId"].to_numpy(), r["movieId"].to_numpy()
    rating, ts = r["rating"].to_numpy().astype(np.float64), r["timestamp"].to_numpy()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(u), 2000, replace=False)
    shift = rng.choice([-1000, 0, 0, 1000], len(pick))  # a quarter older, half on the same second, a quarter newer
    new_r = rng.integers(1, 6, len(pick)).astype(np.float64)
    at = rng.permutation(len(u) + len(pick))  # duplicates anywhere in the file, before or after their twin
    uu, mm = np.concatenate([u, u[pick]])[at], np.concatenate([m, m[pick]])[at]
    rr, tt = np.concatenate([rating, new_r])[at], np.concatenate([ts, ts[pick] + shift])[at]
    return raw, uu, mm, rr, tt


def _write(folder: Path, dataset: str, raw, u, m, r, t) -> Path:
    """``raw``'s movies (and users) and the ratings u, m, r, t in ``dataset``'s layout."""
    from mfrec.data.writers import write_raw

    if dataset == "ml-100k":
        write_raw(raw, folder, "ml-1m")
        lines = [f"{a}\t{b}\t{int(c)}\t{d}\n" for a, b, c, d in zip(u, m, r, t)]
        items = [f"{i}|{title}|||x|" + "|".join(["0"] * 19)
                 for i, title in zip(raw.movies["movieId"].to_list(), raw.movies["title"].to_list())]
        (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1", "replace"))
        (folder / "u.user").write_text("".join(f"{i}|30|M|other|00000\n" for i in raw.users["userId"].to_list()))
        (folder / "u.data").write_text("".join(lines))
    elif dataset == "ml-1m":
        write_raw(raw, folder, "ml-1m")
        (folder / "ratings.dat").write_text("".join(f"{a}::{b}::{int(c)}::{d}\n" for a, b, c, d in zip(u, m, r, t)))
    else:
        write_raw(raw, folder, "ml-25m")
        (folder / "ratings.csv").write_text(RATINGS_HEADER + "".join(f"{a},{b},{c:.1f},{d}\n" for a, b, c, d in zip(u, m, r, t)))
    return folder


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    raw, u, m, r, t = _ratings()
    base = tmp_path_factory.mktemp("engines")
    return {ds: _write(base / ds, ds, raw, u, m, r, t) for ds in LAYOUTS}


def _prepare(source: Path, dataset: str, engine: str, root: Path, split: SplitSpec, **kw) -> tuple[Path, dict]:
    raw = read_dataset(dataset, source=source, engine=engine)
    if engine == "stream":
        kw.setdefault("memory_budget", SMALL_BUDGET)
    return prepare(raw, split, name=engine, root=root, engine=engine, **kw)


def assert_same_dataset(a: Path, b: Path) -> None:
    """Every array and table byte for byte; the manifests equal but for the name and the creation time."""
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    assert "train_movie_user.npy" in files
    for f in files:
        if f != "manifest.json":
            assert filecmp.cmp(a / f, b / f, shallow=False), f
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    for m in (ma, mb):
        m.pop("created"), m.pop("name")
    assert ma == mb


@pytest.mark.parametrize("engine", OTHER_ENGINES)
@pytest.mark.parametrize("dataset", list(LAYOUTS))
@pytest.mark.parametrize("split", SPLITS, ids=lambda s: f"{s.method}-{s.holdout:g}-{s.val_fraction:g}-{s.cutoff}")
def test_both_engines_write_the_same_dataset(sources, tmp_path, dataset, split, engine):
    out_n, sum_n = _prepare(sources[dataset], dataset, "numba", tmp_path, split)
    out_p, sum_p = _prepare(sources[dataset], dataset, engine, tmp_path, split)
    assert sum_n["duplicates_dropped"] == sum_p["duplicates_dropped"] > 1000
    assert sum_n["train"] > 0 and (split.method == "none" or sum_n["test"] > 0)
    if engine == "stream":
        assert int(sum_p["engine"].split("(")[1].split()[0]) >= 5, sum_p["engine"]  # partitions
    assert_same_dataset(out_n, out_p)


@pytest.mark.parametrize("engine", OTHER_ENGINES)
@pytest.mark.parametrize("filters", [dict(min_user_ratings=60), dict(min_movie_ratings=40),
                                     dict(min_user_ratings=40, min_movie_ratings=30)])
def test_both_engines_filter_alike(sources, tmp_path, filters, engine):
    split = SplitSpec("user-last", holdout=2)
    out_n, sum_n = _prepare(sources["ml-25m"], "ml-25m", "numba", tmp_path, split, **filters)
    out_p, sum_p = _prepare(sources["ml-25m"], "ml-25m", engine, tmp_path, split, **filters)
    assert sum_n["filtered_out"] == sum_p["filtered_out"] > 0
    assert_same_dataset(out_n, out_p)


def test_filtering_everything_out_is_the_same_sentence(sources, tmp_path):
    for engine in ("numba", *OTHER_ENGINES):
        with pytest.raises(DataError, match="no ratings left after --min-user-ratings 100000 and --min-movie-ratings 0"):
            _prepare(sources["ml-1m"], "ml-1m", engine, tmp_path, SplitSpec("none"), min_user_ratings=100000)


@pytest.mark.parametrize("val_fraction", [0.0, 0.3])
def test_both_engines_read_ml100k_canonical_splits_alike(tmp_path, val_fraction):
    from mfrec.data.movielens import canonical_test_pairs

    folder = write_ml100k(tmp_path / "ml-100k")
    outs = []
    for engine in ("numba", *OTHER_ENGINES):
        raw = read_dataset("ml-100k", source=folder, engine=engine)
        split = SplitSpec("u1", val_fraction=val_fraction)
        outs.append(prepare(raw, split, name=engine, root=tmp_path / "out", engine=engine, memory_budget=2000,
                            canonical_test=lambda name, raw=raw: canonical_test_pairs(raw, name))[0])
    assert_same_dataset(outs[0], outs[1])
    assert_same_dataset(outs[0], outs[2])


def test_generated_frames_take_the_polars_engine_too(small_raw, tmp_path):
    split = SplitSpec("random", seed=11)
    a, _ = prepare(small_raw, split, name="numba", root=tmp_path, engine="numba")
    b, _ = prepare(small_raw, split, name="polars", root=tmp_path, engine="polars")
    c, _ = prepare(small_raw, split, name="stream", root=tmp_path, engine="stream", memory_budget=SMALL_BUDGET // 10)
    assert_same_dataset(a, b)
    assert_same_dataset(a, c)
    with pytest.raises(DataError, match="unknown engine 'pandas'; choose one of: numba, polars, stream"):
        prepare(small_raw, split, name="x", root=tmp_path, engine="pandas")


BAD_CSV = [
    "1,1,4.0,1147880044\nx,2,3.5,1147868817\n",  # a user id that is not a number
    "1,1,4.0,1147880044\n1,2,3.5\n2,1,0.5,1147868828\n",  # a field missing
    "1,1,4.0,1147880044\n1,2,3.5,1147868817\n2,1,0.5",  # truncated last line
    "1,1,4.0,1147880044\n1,2,3.5,1147868817,9\n",  # one field too many
    "1,1,4.0,1147880044\n\n2,1,0.5,1147868828\n",  # an inner blank line
    "1,1,4.0,1147880044\n-1,2,3.5,1147868817\n",  # a negative id
    "1,1,4.0,1147880044\n1,2,3.7,1147868817\n",  # off the half-star grid
    "1,1,4.0,1147880044\n1,2,nan,1147868817\n",  # not a number
    "1,1,4.0,1147880044\n1,2,3.5,18446744073709551621\n",  # a timestamp beyond int64
    "1,1,4.0,1147880044\n3000000000,2,3.5,1147868817\n",  # an id beyond int32
]


def _both_errors(folder: Path, dataset: str) -> list[str]:
    """The sentence each engine raises for ``folder`` (all must raise); the stream engine leaves no scratch."""
    messages = []
    for engine in ("numba", *OTHER_ENGINES):
        with pytest.raises(DataError) as err:
            _prepare(folder, dataset, engine, folder.parent / "out", SplitSpec("none"))
        messages.append(str(err.value))
    out = folder.parent / "out"
    assert not out.exists() or list(out.iterdir()) == []
    assert messages[2] == messages[1]
    return messages[:2]


@pytest.mark.parametrize("body", BAD_CSV)
def test_malformed_ratings_csv_gives_the_numba_engines_sentence(tmp_path, body):
    folder = write_ml25m(tmp_path / "ml")
    (folder / "ratings.csv").write_text(RATINGS_HEADER + body)
    numba, polars = _both_errors(folder, "ml-25m")
    assert "line " in numba
    assert numba == polars


@pytest.mark.parametrize("body", ["1::1::5::978300760\n1:2::3::978302109\n", "1::1::5::978300760\n1::2::3::978302109::1\n",
                                  "1::1::5::978300760\n1::2::7::978302109\n", "1::1::5::978300760\n1::2:3::978302109\n"])
def test_malformed_ratings_dat_gives_the_numba_engines_sentence(tmp_path, body):
    folder = write_ml1m(tmp_path / "ml")
    (folder / "ratings.dat").write_text(body)
    numba, polars = _both_errors(folder, "ml-1m")
    assert "line 2" in numba
    assert numba == polars


@pytest.mark.parametrize("tail", ["\n\n\n", " \t", "\r\n\r\n  \t\n"])
def test_trailing_whitespace_that_polars_refuses_still_prepares(tmp_path, tail):
    folder = write_ml25m(tmp_path / "ml")
    (folder / "ratings.csv").write_text(RATINGS_HEADER + "1,1,4.0,1147880044\r\n1,2,3.5,1147868817" + tail, newline="")
    a, _ = _prepare(folder, "ml-25m", "numba", tmp_path / "out", SplitSpec("none"))
    for engine in OTHER_ENGINES:
        b, _ = _prepare(folder, "ml-25m", engine, tmp_path / "out", SplitSpec("none"))
        assert_same_dataset(a, b)


@pytest.mark.parametrize("text, message", [("", "ratings.csv is empty"), (RATINGS_HEADER, r"has no ratings \(only the header\)"),
                                           ("user,movie,rating,time\n1,1,4,1\n", "line 1: expected the header")])
def test_empty_or_headerless_files_are_refused_before_the_scan(tmp_path, text, message):
    folder = write_ml25m(tmp_path / "ml")
    (folder / "ratings.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        read_dataset("ml-25m", source=folder, engine="polars")


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
def test_cli_engine_flag_writes_the_same_dataset_from_a_folder_or_a_zip(tmp_path, zipped):
    from click.testing import CliRunner

    from mfrec.cli.prepare import prepare as prepare_cmd
    from test_data_files import zip_folder

    source = write_ml25m(tmp_path / "ml-25m")
    if zipped:
        source = zip_folder(source, tmp_path / "ml-25m.zip", "ml-25m")
    for engine in ("numba", "polars"):
        res = CliRunner().invoke(prepare_cmd, ["--dataset", "ml-25m", "--source", str(source), "--split", "user-last",
                                               "--engine", engine, "--name", engine, "--data-root", str(tmp_path / "out")])
        assert res.exit_code == 0, res.output
        assert "train 3 / val 0 / test 2" in res.output
    assert_same_dataset(tmp_path / "out" / "numba", tmp_path / "out" / "polars")
    if not zipped:  # a malformed line: the input-error exit code and the Numba engine's sentence
        (source / "ratings.csv").write_text(RATINGS_HEADER + "1,1,4.0,1\n1,x,3,2\n")
        res = CliRunner().invoke(prepare_cmd, ["--dataset", "ml-25m", "--source", str(source), "--engine", "polars",
                                               "--data-root", str(tmp_path / "out")])
        assert res.exit_code == 2
        assert "ratings.csv line 3: the movie id is not a whole number" in res.output


def test_ids_too_large_for_a_lookup_table_map_alike(tmp_path):
    """Ids up to 2**31 - 1 go through a sorted search instead of a table, in both engines."""
    folder = write_ml25m(tmp_path / "ml")
    with open(folder / "movies.csv", "a") as f:
        f.write("2147483647,Last Movie (2020),Drama\n1000000000,Middle Movie (2010),Comedy\n")
    (folder / "ratings.csv").write_text(RATINGS_HEADER + "7,2147483647,4.0,5\n2000000000,1,3.5,6\n7,1000000000,2.0,7\n"
                                        "7,2,1.0,8\n2000000000,2147483647,5.0,9\n")
    a, _ = _prepare(folder, "ml-25m", "numba", tmp_path / "out", SplitSpec("none"))
    for engine in OTHER_ENGINES:
        b, _ = _prepare(folder, "ml-25m", engine, tmp_path / "out", SplitSpec("none"))
        assert_same_dataset(a, b)
        assert np.load(b / "movie.npy").tolist() == [3, 2, 1, 0, 3]


def test_stream_budget_too_small_for_one_user_says_so(sources, tmp_path):
    with pytest.raises(DataError, match=r"^--memory-budget 6,000 bytes holds 100 ratings at a time, but user \d+ alone "
                                        r"has \d+: raise the budget to at least \d[\d,]* bytes$"):
        _prepare(sources["ml-25m"], "ml-25m", "stream", tmp_path, SplitSpec("none"), memory_budget=100 * ROW_BYTES)
    assert list(tmp_path.iterdir()) == []  # the scratch folder is gone


def test_stream_time_quantile_beyond_the_budget_is_refused_and_a_cutoff_is_not(sources, tmp_path):
    """The time split's quantile needs every timestamp at once: over the budget it asks for --cutoff."""
    budget = 100_000 * 8 - 1  # room for the partitions, not for the 100,000 timestamps
    with pytest.raises(DataError, match=r"the time split's quantile needs all 100,000 timestamps in memory .* give --cutoff"):
        _prepare(sources["ml-25m"], "ml-25m", "stream", tmp_path, SplitSpec("time", test_fraction=0.1), memory_budget=budget)
    split = SplitSpec("time", cutoff=976_000_000.0)
    a, _ = _prepare(sources["ml-25m"], "ml-25m", "numba", tmp_path, split)
    b, _ = _prepare(sources["ml-25m"], "ml-25m", "stream", tmp_path, split, memory_budget=budget)
    assert_same_dataset(a, b)


def test_stream_movie_blocks_and_budget_sizes(tmp_path, monkeypatch):
    """The by-movie index built in one-movie blocks, read one rating at a time, equals the one-pass
    transpose; sizes parse as written."""
    import mfrec.data.stream as stream
    from mfrec.data.stream import parse_size

    monkeypatch.setattr(stream, "ROW_BYTES", 1)

    assert parse_size("512MB") == 512 << 20 and parse_size("2g") == 2 << 30 and parse_size("1.5GiB") == 3 << 29
    assert parse_size("300000") == 300000
    with pytest.raises(DataError, match="--memory-budget 'lots' is not a size; give e.g. 512MB or 2GB"):
        parse_size("lots")
    folder = write_ml25m(tmp_path / "ml")
    a, _ = _prepare(folder, "ml-25m", "numba", tmp_path / "out", SplitSpec("none"))
    b, _ = _prepare(folder, "ml-25m", "stream", tmp_path / "out", SplitSpec("none"), memory_budget=20)
    assert_same_dataset(a, b)


def test_cli_stream_engine_with_a_budget(tmp_path):
    from click.testing import CliRunner

    from mfrec.cli.prepare import prepare as prepare_cmd

    source = write_ml25m(tmp_path / "ml-25m")
    args = ["--dataset", "ml-25m", "--source", str(source), "--split", "user-last", "--data-root", str(tmp_path / "out")]
    res = CliRunner().invoke(prepare_cmd, [*args, "--name", "numba"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(prepare_cmd, [*args, "--name", "stream", "--engine", "stream", "--memory-budget", "64MB"])
    assert res.exit_code == 0, res.output
    assert "stream (1 partition(s), 64 MB budget)" in res.output
    assert_same_dataset(tmp_path / "out" / "numba", tmp_path / "out" / "stream")
    res = CliRunner().invoke(prepare_cmd, [*args, "--engine", "numba", "--memory-budget", "64MB"])
    assert res.exit_code == 2 and "--memory-budget goes with --engine stream" in res.output


def test_stream_engine_under_a_relative_data_root(tmp_path, monkeypatch):
    """The scratch folder beside a relative --data-root (Training_data/ by default) is found again."""
    folder = write_ml25m(tmp_path / "ml")
    monkeypatch.chdir(tmp_path)
    a, _ = _prepare(folder, "ml-25m", "numba", Path("Training_data"), SplitSpec("user-last"))
    b, s = _prepare(folder, "ml-25m", "stream", Path("Training_data"), SplitSpec("user-last"))
    assert s["ratings"] == 5
    assert_same_dataset(a, b)
    assert sorted(p.name for p in Path("Training_data").iterdir()) == ["numba", "stream"]


def test_cli_auto_engine_streams_a_file_larger_than_the_memory_available(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import mfrec.data.stream as stream
    from mfrec.cli.prepare import prepare as prepare_cmd

    source = write_ml25m(tmp_path / "ml-25m")
    args = ["--dataset", "ml-25m", "--source", str(source), "--split", "user-last", "--data-root", str(tmp_path / "out")]
    res = CliRunner().invoke(prepare_cmd, [*args, "--name", "roomy"])
    assert res.exit_code == 0, res.output
    assert "numba (auto)" in res.output
    monkeypatch.setattr(stream, "IN_MEMORY_PER_FILE_BYTE", 100_000)  # as if the file were larger...
    monkeypatch.setattr(stream, "available_memory", lambda: 10 << 20)  # ...than the memory available
    res = CliRunner().invoke(prepare_cmd, [*args, "--name", "tight"])
    assert res.exit_code == 0, res.output
    assert "stream (1 partition(s), 5 MB budget) (auto: ratings.csv needs ~" in res.output
    assert "MB in memory, 10 MB available)" in res.output
    assert_same_dataset(tmp_path / "out" / "roomy", tmp_path / "out" / "tight")


@pytest.mark.parametrize("ts_span", [50, 2**62], ids=["many-ties", "keys-too-wide"])
def test_stream_partition_order_is_user_time_movie_line(ts_span):
    """The stream engine's sort of a partition equals a plain lexsort, through the tie groups and the fallback."""
    from mfrec.data.stream import _sort_order

    rng = np.random.default_rng(5)
    n = 20_000
    u = np.sort(rng.integers(0, 300, n)).astype(np.int32)
    ts = rng.integers(0, ts_span, n, dtype=np.int64)
    mid = rng.integers(0, 2**31 - 1, n).astype(np.int32)
    mid[::7] = mid[0]  # repeated movies on one second: the line decides
    line = rng.permutation(n).astype(np.uint32)
    assert np.array_equal(_sort_order(u, ts, mid, line), np.lexsort((line, mid, ts, u)))


def test_stream_interrupt_leaves_no_scratch_and_keeps_the_old_dataset(sources, tmp_path, monkeypatch):
    """Ctrl-C while the partitions are written: the scratch folders go, an earlier dataset of that name stays."""
    import mfrec.data.stream as stream

    split = SplitSpec("user-last", holdout=2)
    old, _ = _prepare(sources["ml-25m"], "ml-25m", "stream", tmp_path, split)
    before = (old / "manifest.json").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stream, "_indptr", interrupted)  # once every partition is in the dataset's arrays
    with pytest.raises(KeyboardInterrupt):
        _prepare(sources["ml-25m"], "ml-25m", "stream", tmp_path, split)
    assert [p.name for p in tmp_path.iterdir()] == ["stream"]
    assert (old / "manifest.json").read_bytes() == before
