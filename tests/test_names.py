"""Hostile names: a dataset name, run name or label never reaches outside its folder, never makes
mfrec delete what it did not create, and one too long for the file system is one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mfrec.cli.prepare import prepare as prepare_cmd
from mfrec.data import load
from mfrec.data.names import plain_name, sanitize
from mfrec.data.prepare import prepare
from mfrec.data.splits import SplitSpec
from mfrec.data.synthetic import SyntheticSpec, generate
from mfrec.errors import DataError, MfrecError
from mfrec.experiments.run import Run
from mfrec.inference.output import safe_label, write_frame

LONG = "x" * 300


def cli(tmp_path: Path, *args: str):
    root = tmp_path / "work" / "Training_data"
    return CliRunner().invoke(prepare_cmd, ["--data-root", str(root), "--quiet", "--ratings", "900", "--users", "60",
                                            "--movies", "40", *args])


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def world(tmp_path):
    """Two prepared datasets, a folder of someone else's files beside them, and one outside."""
    root = tmp_path / "work" / "Training_data"
    for name in ("a", "b"):
        assert cli(tmp_path, "--name", name).exit_code == 0
    (root / "notes").mkdir()
    (root / "notes" / "keep.txt").write_text("mine")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "precious.txt").write_text("mine")
    return tmp_path, tree(tmp_path)


@pytest.mark.parametrize("name", [".", "..", "../../escape", "../a", "a/b", "/ABS", ".hidden", "-x", "a b", "", LONG])
def test_prepare_refuses_a_name_that_is_not_plain_and_touches_nothing(world, name):
    tmp_path, before = world
    name = name.replace("/ABS", str(tmp_path / "victim"))
    res = cli(tmp_path, "--name", name)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.output.count("\n") == 1, res.output
    assert ("bytes long" if name == LONG else "letters, digits, '.', '_' and '-'") in res.output
    assert tree(tmp_path) == before
    assert load("a", data_root=tmp_path / "work" / "Training_data").n_users == 60


def test_the_store_replaces_only_a_folder_it_created(world):
    tmp_path, before = world
    root = tmp_path / "work" / "Training_data"
    res = cli(tmp_path, "--name", "notes")
    assert res.exit_code == 2 and "is not a prepared dataset" in res.output, res.output
    assert tree(tmp_path) == before
    raw = generate(SyntheticSpec(n_users=60, n_movies=40, n_ratings=900, seed=1))
    with pytest.raises(DataError, match="not a plain name"):  # the library call, too
        prepare(raw, SplitSpec("random"), name=str(tmp_path / "victim"), root=root)
    with pytest.raises(DataError, match="not a plain name"):
        prepare(raw, SplitSpec("random"), name=".", root=root)
    assert tree(tmp_path) == before


def test_names_that_fit_are_accepted():
    assert plain_name("ml-100k_u1.v2", "dataset name") == "ml-100k_u1.v2"
    assert sanitize("../../my run/") == "my-run"
    with pytest.raises(DataError, match="is 300 bytes long, but names here may be at most 245"):
        plain_name(LONG, "dataset name", reserve=10)


def test_run_name_too_long_is_one_sentence(tmp_path):
    with pytest.raises(MfrecError, match=r"run name 'x+\.\.\.' is 300 bytes long.*choose a shorter one"):
        Run.create(LONG, tmp_path)
    assert list(tmp_path.iterdir()) == []
    run = Run.create("../../" + "y" * 200, tmp_path)  # made plain, and it fits
    assert run.path.parent == tmp_path and run.name.startswith("y" * 200 + "-")


def test_prediction_label_too_long_is_one_sentence(tmp_path):
    import polars as pl

    with pytest.raises(DataError, match=r"--label 'x+\.\.\.' is 300 bytes long"):
        safe_label(LONG, tmp_path)
    table = pl.DataFrame({"rank": [1]})
    with pytest.raises(DataError, match="bytes long"):
        write_frame(table, "run", LONG, tmp_path)
    csv, parquet = write_frame(table, "../run", "../" + "z" * 200, tmp_path)
    assert csv.parent == tmp_path / "run" and csv.name == "z" * 200 + ".csv" and parquet.is_file()
