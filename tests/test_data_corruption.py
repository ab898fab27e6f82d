"""Damaged prepared datasets (STYLE 22): every reader answers with one DataError sentence.

manifest.json and rating.npy of a small generated dataset are flipped, truncated and emptied;
``load`` (with and without ``verify``), ``Manifest.read``, the IMDB enrichment and the CLI commands
that take ``--verify`` must each say which file is wrong and what to do, never a traceback.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from mfrec.data import load
from mfrec.data.manifest import Manifest
from mfrec.errors import DataError

AGAIN = "prepare the dataset again"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.synthetic import SyntheticSpec, generate

    raw = generate(SyntheticSpec(n_users=80, n_movies=60, n_ratings=1500, seed=5))
    out, _ = prepare(raw, SplitSpec("user-last", seed=2), name="tiny", root=tmp_path_factory.mktemp("Training_data"))
    return out


@pytest.fixture
def folder(prepared, tmp_path):
    """A fresh copy of the prepared dataset to damage."""
    return shutil.copytree(prepared, tmp_path / "tiny")


def _flip(path, offset, mask=0x01):
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path):
    path.write_bytes(b"")


def _edit_manifest(folder, edit):
    m = json.loads((folder / "manifest.json").read_text())
    edit(m)
    (folder / "manifest.json").write_text(json.dumps(m))


def _one_sentence(err: DataError, path, *words: str) -> str:
    msg = str(err)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def _readers(folder):
    """Every way a prepared dataset is read, each as a call that should raise DataError."""
    from mfrec.data.imdb import enrich_dataset

    return {
        "load": lambda: load(folder),
        "load-verify": lambda: load(folder, verify=True),
        "enrich": lambda: enrich_dataset(folder, folder, "links.csv", b"movieId,imdbId,tmdbId\n"),
    }


# -- manifest.json ----------------------------------------------------------------------------------
MANIFEST_DAMAGE = {
    "flipped": (lambda f: _flip(f, 0), "not valid JSON"),
    "flipped-to-non-utf8": (lambda f: _flip(f, 10, 0x80), "not UTF-8"),
    "truncated": (_truncate, "not valid JSON"),
    "empty": (_empty, "empty"),
    "a list": (lambda f: f.write_text("[1, 2]"), "a list of 2 instead of a JSON object"),
}


@pytest.mark.parametrize("damage", MANIFEST_DAMAGE)
def test_damaged_manifest_is_one_sentence_for_every_reader(folder, damage):
    spoil, what = MANIFEST_DAMAGE[damage]
    manifest = folder / "manifest.json"
    spoil(manifest)
    for read in [*_readers(folder).values(), lambda: Manifest.read(manifest)]:
        with pytest.raises(DataError) as e:
            read()
        _one_sentence(e.value, manifest, what, AGAIN)


FIELD_DAMAGE = {
    "missing field": (lambda m: m.pop("counts"), "the field counts is missing"),
    "missing count": (lambda m: m["counts"].pop("movies"), "counts.movies is missing"),
    "wrong type": (lambda m: m["counts"].update(users="80"),
                   'counts.users should be a non-negative integer, found a string "80"'),
    "bool for int": (lambda m: m.update(format_version=True), "format_version should be an integer, found a boolean true"),
    "genre not a string": (lambda m: m["genres"].append(3), "should be a string, found an integer 3"),
    "bad scale": (lambda m: m.update(rating_scale=[5, 1]), "rating_scale [5, 1] is not increasing"),
    "offsets past the end": (lambda m: m["split_offsets"].update(test=[0, 10**9]),
                             "split_offsets.test [0, 1000000000]"),
    "no train split": (lambda m: m["split_offsets"].pop("train"), "split_offsets has no train split"),
    "bad checksum": (lambda m: m["checksums"].update({"rating.npy": "abc"}), "checksums.rating.npy should be 64 hex digits"),
    "path in sizes": (lambda m: m["sizes"].update({"../x": 1}), 'sizes names "../x"'),
    "no version": (lambda m: m.pop("format_version"), "it has no format_version"),
    "unknown version": (lambda m: m.update(format_version=2), "has format version 2; this mfrec reads version 1"),
}


@pytest.mark.parametrize("damage", FIELD_DAMAGE)
def test_wrong_or_missing_field_is_named(folder, damage):
    edit, what = FIELD_DAMAGE[damage]
    _edit_manifest(folder, edit)
    for read in _readers(folder).values():
        with pytest.raises(DataError) as e:
            read()
        _one_sentence(e.value, folder / "manifest.json", what, AGAIN)


def test_manifest_round_trips_and_keeps_unknown_fields(folder):
    _edit_manifest(folder, lambda m: m.update(future={"x": 1}))
    data = json.loads((folder / "manifest.json").read_text())
    m = Manifest.read(folder / "manifest.json")
    assert m.to_dict() == data
    assert Manifest.from_dict(m.to_dict()) == m
    assert m.other == {"future": {"x": 1}} and m.counts["users"] == 80 and m.split["method"] == "user-last"
    assert set(m.sizes) == set(m.checksums) and m.sizes["rating.npy"] == (folder / "rating.npy").stat().st_size


def test_old_manifest_without_sizes_or_optional_fields_still_loads(folder):
    def strip(m):
        for key in ("sizes", "dataset", "source", "created", "rating_step", "seed", "split", "filters", "extra"):
            m.pop(key)
    _edit_manifest(folder, strip)
    ds = load(folder, verify=True)
    assert ds.n_users == 80 and ds.manifest.sizes == {} and ds.manifest.split == {}
    assert len(ds.train) + len(ds.test) == 1500


def test_wrong_recorded_size_with_a_matching_hash_is_accepted(folder):
    _edit_manifest(folder, lambda m: m["sizes"].update({"rating.npy": 7}))
    assert len(load(folder).ratings) == 1500


# -- rating.npy ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spoil", [_truncate, _empty], ids=["truncated", "empty"])
def test_truncated_or_empty_array_is_caught_by_the_size_check(folder, spoil):
    f = folder / "rating.npy"
    size = f.stat().st_size
    spoil(f)
    for verify in (False, True):
        with pytest.raises(DataError) as e:
            load(folder, verify=verify)
        _one_sentence(e.value, f, "does not match manifest.json", f"expected {size:,} bytes", f"found {f.stat().st_size:,} bytes", AGAIN)


@pytest.mark.parametrize("spoil", [_truncate, _empty, lambda f: _flip(f, 1)], ids=["truncated", "empty", "flipped-magic"])
def test_damaged_array_without_recorded_sizes_is_still_one_sentence(folder, spoil):
    _edit_manifest(folder, lambda m: m.pop("sizes"))
    f = folder / "rating.npy"
    spoil(f)
    with pytest.raises(DataError) as e:
        load(folder)
    _one_sentence(e.value, f, "is not a readable .npy file", AGAIN)


def test_same_size_flipped_byte_is_caught_by_verify(folder):
    f = folder / "rating.npy"
    _flip(f, f.stat().st_size - 1)  # the last rating's high byte: the header still parses
    ds = load(folder)  # the size check alone cannot see it
    assert len(ds.ratings) == 1500
    with pytest.raises(DataError) as e:
        load(folder, verify=True)
    _one_sentence(e.value, f, "does not match manifest.json", "SHA-256", AGAIN)
    with pytest.raises(DataError):
        ds.verify()


def test_wrong_dtype_or_length_is_named(folder):
    _edit_manifest(folder, lambda m: (m.pop("sizes"), m.pop("checksums")))
    f = folder / "rating.npy"
    np.save(f, np.load(f).astype(np.float64))
    with pytest.raises(DataError) as e:
        load(folder)
    _one_sentence(e.value, f, "holds float64 1,500 where the dataset needs float32 x 1,500", AGAIN)
    np.save(f, np.ones(10, np.float32))
    with pytest.raises(DataError) as e:
        load(folder)
    _one_sentence(e.value, f, "float32 10 where the dataset needs float32 x 1,500")


def test_missing_file_is_named(folder):
    (folder / "train_movie_user.npy").unlink()
    with pytest.raises(DataError) as e:
        load(folder)
    _one_sentence(e.value, folder / "train_movie_user.npy", "is missing", AGAIN)


def test_damaged_parquet_without_recorded_sizes_is_one_sentence_when_read(folder):
    _edit_manifest(folder, lambda m: m.pop("sizes"))
    f = folder / "movies.parquet"
    _truncate(f)
    ds = load(folder)
    with pytest.raises(DataError) as e:
        ds.movies
    _one_sentence(e.value, f, "is not a readable parquet file", AGAIN)


def test_enrichment_records_imdb_parquet_so_load_checks_it(folder):
    from mfrec.data.imdb import IMDB_FILE

    m = Manifest.read(folder / "manifest.json")
    table = load(folder).movies.head(3)
    table.write_parquet(folder / IMDB_FILE)
    replace(m, imdb={"linked": 3}).with_files(folder, [IMDB_FILE]).write(folder / "manifest.json")
    assert load(folder, verify=True).manifest.imdb == {"linked": 3}
    _flip(folder / IMDB_FILE, 20)
    with pytest.raises(DataError, match=IMDB_FILE):
        load(folder, verify=True)


# -- the commands -----------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["analyze", "evaluate"])
def test_verify_flag_reports_a_flipped_byte_in_one_line(folder, tmp_path, command):
    from mfrec.cli.analyze import analyze
    from mfrec.cli.evaluate import evaluate

    f = folder / "rating.npy"
    _flip(f, f.stat().st_size - 1)
    args = {"analyze": (analyze, ["--data", str(folder), "--out", str(tmp_path / "fig")]),
            "evaluate": (evaluate, ["--popularity", "--data", str(folder), "--runs-root", str(tmp_path / "runs"), "--quiet"])}
    cmd, argv = args[command]
    res = CliRunner().invoke(cmd, [*argv, "--verify"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(f) in lines[0] and "SHA-256" in lines[0]
    assert not (tmp_path / "fig").exists() and not (tmp_path / "runs").exists()
