"""The corruption matrix (issue 15, finding 6; STYLE 22): every artefact of a run folder and of a
prepared dataset is damaged in every way, and every reader is run over it.

Artefacts: model.npz, config.json, summary.json, metrics.csv (run folder); manifest.json, rating.npy,
movies.parquet (dataset). Damages: truncated to half, bytes flipped in the middle, emptied, and for
JSON a list instead of an object and every field given a value of another type. Readers:
Inference.py (``mfrec recommend``), ``mfrec plot``, ``mfrec compare``, ``mfrec evaluate`` (with and
without ``--verify``), ``mfrec.load_experiment(...).recommend(...)`` and ``mfrec.data.load`` (with and
without ``verify``).

A reader that reads the damaged file answers exit code 2 (or raises an MfrecError) with one line that
names the file, never a traceback; a reader that does not read it works as before. A few damages
keep a file's size and cannot be seen without hashing it: there only the readers that check hashes
must refuse, the others may work or refuse in one sentence.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import mfrec
from mfrec.errors import MfrecError

RUN_FILES = ("model.npz", "config.json", "summary.json", "metrics.csv")
DATA_FILES = ("manifest.json", "rating.npy", "movies.parquet")
JSON_FILES = ("config.json", "summary.json", "manifest.json")


# -- the world: one tiny dataset and one run trained on it, once per module --------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.synthetic import SyntheticSpec, generate
    from mfrec.training import train_run

    base = tmp_path_factory.mktemp("matrix")
    raw = generate(SyntheticSpec(n_users=60, n_movies=40, n_ratings=900, seed=13))
    data = prepare(raw, SplitSpec("random", 0.2, 0.1, seed=1), name="d", root=base / "Training_data")[0]
    ds = load(data)
    run, _ = train_run(ds, "mf", {"factors": 3, "epochs": 2}, runs_root=base / "Experiments_", name="mf")
    return base, run.path.name, int(ds.movies["movieId"][0])


@pytest.fixture
def world(pristine, tmp_path):
    """A fresh copy: (run folder, dataset folder, a movieId to like), the run pointing at the copied dataset."""
    base, run_name, movie_id = pristine
    shutil.copytree(base, tmp_path / "w")
    run, data = tmp_path / "w" / "Experiments_" / run_name, tmp_path / "w" / "Training_data" / "d"
    cfg = json.loads((run / "config.json").read_text())
    cfg["data_path"] = str(data.resolve())
    (run / "config.json").write_text(json.dumps(cfg))
    return run, data, movie_id


# -- damages --------------------------------------------------------------------------------------
def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _flip(f: Path) -> None:
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    for i in range(max(0, mid - 8), min(len(data), mid + 8)):
        data[i] ^= 0xFF
    f.write_bytes(bytes(data))


def _empty(f: Path) -> None:
    f.write_bytes(b"")


def _list(f: Path) -> None:
    f.write_text("[1, 2]")


def _other_type(v):
    if isinstance(v, (bool, int, float)):
        return "x"
    if isinstance(v, str):
        return 5
    if isinstance(v, list):
        return {"x": 1}
    return [1]


def _retype(f: Path) -> None:
    f.write_text(json.dumps({k: _other_type(v) for k, v in json.loads(f.read_text()).items()}))


DAMAGES = {"truncate": _truncate, "flip": _flip, "empty": _empty, "list": _list, "retype": _retype}
CASES = [(a, d) for a in RUN_FILES + DATA_FILES for d in DAMAGES if a in JSON_FILES or d not in ("list", "retype")]


# -- readers: each returns None when it worked, else the one sentence it gave ------------------------
def _cli(command, args) -> str | None:
    r = CliRunner().invoke(command, [str(a) for a in args])
    if r.exit_code == 0:
        return None
    assert isinstance(r.exception, SystemExit) and r.exit_code == 2, (r.exit_code, r.output, r.exc_info)
    assert "Traceback" not in r.output, r.output
    last = r.output.rstrip("\n").splitlines()[-1]
    assert last.startswith("error: "), r.output
    return last


def _api(call) -> str | None:
    try:
        call()
    except MfrecError as e:
        assert "\n" not in str(e).strip(), str(e)
        return str(e)
    return None


def _readers(run: Path, data: Path, movie_id: int, out: Path) -> dict:
    from mfrec.cli.compare import compare
    from mfrec.cli.evaluate import evaluate
    from mfrec.cli.plot import plot
    from mfrec.cli.recommend import recommend

    rating = ["--experiment", run, "--protocol", "rating", "--quiet"]
    return {
        "Inference.py": lambda: _cli(recommend, ["-e", run, "--like", movie_id, "--min-ratings", 0,
                                                 "--out-dir", out / "P"]),
        "plot": lambda: _cli(plot, ["-e", run, "--out", out / "plots"]),
        "compare": lambda: _cli(compare, [run, "--csv", out / "c.csv", "--out", out / "c.png"]),
        "evaluate": lambda: _cli(evaluate, rating),
        "evaluate --verify": lambda: _cli(evaluate, [*rating, "--verify"]),
        "load_experiment": lambda: _api(lambda: mfrec.load_experiment(run).recommend(like=[movie_id], top=3,
                                                                                      min_ratings=0)),
        "data.load": lambda: _api(lambda: mfrec.data.load(data)),
        "data.load verify": lambda: _api(lambda: mfrec.data.load(data, verify=True)),
    }


# which readers read each artefact (the others must not notice the damage)
READS = {
    "model.npz": {"Inference.py", "plot", "evaluate", "evaluate --verify", "load_experiment"},
    "config.json": {"Inference.py", "plot", "compare", "evaluate", "evaluate --verify", "load_experiment"},
    "summary.json": {"Inference.py", "plot", "compare", "evaluate", "evaluate --verify", "load_experiment"},
    "metrics.csv": {"plot", "compare"},
    "manifest.json": {"Inference.py", "plot", "evaluate", "evaluate --verify", "load_experiment", "data.load",
                      "data.load verify"},
}
READS["rating.npy"] = READS["movies.parquet"] = READS["manifest.json"]
HASHING = {"evaluate", "evaluate --verify", "data.load verify"}  # the readers that see a same-size change


@pytest.mark.parametrize("artefact,damage", CASES, ids=[f"{a}-{d}" for a, d in CASES])
def test_every_reader_answers_a_damaged_file_in_one_sentence(world, tmp_path, artefact, damage):
    run, data, movie_id = world
    target = (run if artefact in RUN_FILES else data) / artefact
    DAMAGES[damage](target)
    named = f"{target.parent.name}/{target.name}"
    same_size = damage == "flip" and artefact in ("rating.npy", "movies.parquet")
    wrong = []
    for reader, call in _readers(run, data, movie_id, tmp_path / "out").items():
        sentence = call()
        must_refuse = reader in READS[artefact] and (not same_size or reader in HASHING)
        may_refuse = reader in READS[artefact]
        if sentence is None and must_refuse:
            wrong.append(f"{reader}: worked on a damaged {artefact}")
        elif sentence is not None and not may_refuse:
            wrong.append(f"{reader}: refused though it does not read {artefact}: {sentence}")
        elif sentence is not None and named not in sentence:
            wrong.append(f"{reader}: does not name {named}: {sentence}")
    assert not wrong, "\n".join(wrong)


def test_compare_over_a_glob_skips_and_lists_a_damaged_run(world, tmp_path):
    from mfrec.cli.compare import compare

    run, _, _ = world
    good = run.parent / "good"
    shutil.copytree(run, good)
    (run / "metrics.csv").write_bytes(b"epoch,train_rmse\n1,\xff\xfe\n")
    (run.parent / "not-a-run").mkdir()  # a folder the glob matches that is no run: silently left out, as before
    glob = str(run.parent / "*")
    r = CliRunner().invoke(compare, [glob, "--csv", str(tmp_path / "c.csv"), "--out", str(tmp_path / "c.png")])
    assert r.exit_code == 0, r.output
    assert "1 run " in r.output and "Traceback" not in r.output
    skipped = [line for line in r.output.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and run.name in skipped[0] and "metrics.csv is damaged" in skipped[0]
    assert (tmp_path / "c.csv").read_text().count("\n") == 2  # header and the good run
    (good / "summary.json").write_text("{")
    r = CliRunner().invoke(compare, [glob, "--csv", str(tmp_path / "c.csv")])
    assert r.exit_code == 2 and "none of the 2 runs could be read" in r.output.splitlines()[-1]


def test_a_damaged_train_log_still_reads(world):
    run, _, _ = world
    (run / "train.log").write_bytes(b"2026-01-01 00:00:00 ok\n\xff\xfe garbage\n")
    assert "\ufffd" in mfrec.load_experiment(run).log


# -- a fuzz loop over the small-file parsers: random bytes changed, cut or inserted ------------------
def _mutations(text: bytes, rng, n: int):
    for _ in range(n):
        data = bytearray(text)
        how = rng.integers(3)
        at = int(rng.integers(len(data) + 1))
        if how == 0 and data:
            for i in rng.integers(len(data), size=int(rng.integers(1, 4))):
                data[i] = int(rng.integers(256))
        elif how == 1:
            del data[at:]
        else:
            data[at:at] = bytes(rng.integers(256, size=int(rng.integers(1, 6))).astype(np.uint8))
        yield bytes(data)


def test_fuzzed_small_files_are_read_or_refused_in_one_sentence(world):
    from mfrec.data.manifest import Manifest
    from mfrec.experiments import Experiment, read_json, read_metrics
    from mfrec.experiments.summary import Summary
    from mfrec.models.factor import FactorModel

    run, data, _ = world
    readers = {
        run / "config.json": lambda f: (read_json(f), Experiment(f.parent).dataset_fingerprint),
        run / "summary.json": Summary.read,
        run / "metrics.csv": lambda f: read_metrics(f.parent),
        data / "manifest.json": Manifest.read,
        run / "model.npz": FactorModel.load,
    }
    rng = np.random.default_rng(2026)
    for f, read in readers.items():
        original = f.read_bytes()
        for mutated in _mutations(original, rng, 40):
            f.write_bytes(mutated)
            try:
                read(f)
            except MfrecError as e:
                assert "\n" not in str(e) and f.name in str(e), (f.name, mutated[:80], str(e))
            except Exception as e:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{f.name} mutated to {mutated[:80]!r}: {type(e).__name__}: {e}")
        f.write_bytes(original)
