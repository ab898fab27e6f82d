"""Every command example of the README and of the ``--help`` texts runs as written.

The examples are read at test time: every line of a README ```bash block and every inline code span
that starts with ``python Data_processing.py``, ``python Main.py``, ``python Inference.py`` or
``mfrec``, and every such line of a command's ``--help``. Each runs through click's CliRunner (the
scripts are these commands: ``Data_processing.py`` = ``mfrec prepare`` ...) in one temporary
working folder that holds small generated data under the names the examples use:

- ``path/to/ml-100k`` (ml-100k files: u.data, u.item, u.user, u.genre, u1.base/u1.test),
  ``ml-1m.zip``, ``ml-25m.zip`` (with links.csv), ``path/to/imdb`` (IMDB TSVs) and
  ``path/to/ml-1m-meta`` (movies.dat + users.dat), all written from one synthetic dataset whose
  most-rated movies carry the titles the examples ask for (``TITLES``);
- prepared datasets ``ml-100k-u1``, ``ml-100k-user-last`` and ``demo`` (what ``scripts/demo.sh``
  prepares), and the runs ``ml-100k-u1-mf-genre``, ``ml-100k-user-last-mf`` (and, with torch,
  ``ml-100k-u1-neumf``) that examples name without creating.

``RUN`` (the README's placeholder for "a run") stands for ``ml-100k-user-last-mf``. Synthetic
examples of the 25M shape run with ``--shape ml-100k`` (``SMALLER``); a MovieLens example without
``--source`` downloads from a local 127.0.0.1 server; torch examples are skipped without torch.
An example that cannot run here is listed in ``SKIP`` with the reason. The README's ```python
blocks are executed in the same folder.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import importlib.util
import json
import re
import shlex
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_data_files import GENRES_100K, zip_folder

from mfrec.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# each top-level script and the command it runs (read from the script: ``run_script("prepare")``)
SCRIPTS = {p.name: re.search(r'run_script\("(\w+)"\)', p.read_text()).group(1) for p in sorted(REPO.glob("*.py"))}
PREFIXES = tuple(f"python {s}" for s in SCRIPTS) + ("mfrec ",)
NEURAL = ("neumf", "genre-embedding", "attention", "sequential")
HAS_TORCH = importlib.util.find_spec("torch") is not None

# placeholder -> what it stands for here
PLACEHOLDERS = {"RUN": "ml-100k-user-last-mf"}
# (option, value as written) -> the value used here, for examples too long for the test run
SMALLER = {("--shape", "ml-25m"): "ml-100k", ("--shape", "ml-32m"): "ml-100k", ("--shape", "ml-20m"): "ml-100k"}
# neural training examples train for one epoch here (their defaults are 5-15 epochs)
NEURAL_EPOCHS = ["--epochs", "1"]
# example text (as written) -> why it is not run
SKIP: dict[str, str] = {
    "mfrec tune --data demo --model mf --grid factors=16,64 --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster":
        "needs a Dask cluster",
    "mfrec tune --data demo --model mf --grid factors=32,64 --scheduler tcp://10.0.0.5:8786": "needs a Dask cluster",
    "python Main.py --data synth-25m --model mf --engine dask --scheduler tcp://10.0.0.5:8786 --blocks 8":
        "needs a Dask cluster",
}
# what an interactive example reads from its standard input
INTERACTIVE_INPUT = "search star wars\nadd Star Wars 5\nadd Alien 4\nrecommend\nsimilar Titanic\nexit\n"

# the titles the examples name, given to the generated data's most-rated movies (title, year, genres)
TITLES = [
    ("Star Wars (1977)", 1977, ["Action", "Adventure", "Sci-Fi"]),
    ("Alien (1979)", 1979, ["Horror", "Sci-Fi"]),
    ("Titanic (1997)", 1997, ["Drama", "Romance"]),
    ("Godfather, The (1972)", 1972, ["Crime", "Drama"]),
    ("Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"]),
    ("Matrix, The (1999)", 1999, ["Action", "Sci-Fi"]),
]
OCCUPATIONS = ("administrator", "artist", "doctor", "educator", "engineer", "other", "programmer", "student", "writer")


# -- extracting the examples -------------------------------------------------------------------
def _commands(lines, where: str) -> list[tuple[str, str]]:
    """(label, command) for every line that starts with one of PREFIXES (``\\`` continuations joined)."""
    out, pending = [], ""
    for number, line in lines:
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        if text.startswith(PREFIXES):
            out.append((f"{where}:{number}", text))
    return out


def readme_examples() -> list[tuple[str, str]]:
    """Every command line of the README's ```bash blocks, and every inline code span with a command and its options."""
    lines = README.read_text(encoding="utf-8").splitlines()
    block, fenced = [], None
    inline = []
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            fenced = None if fenced is not None else line[3:].strip()
            continue
        if fenced == "bash":
            block.append((number, line))
        elif fenced is None:
            for span in re.findall(r"`([^`]+)`", line):
                inline.append((number, span))
    inline = [(label, cmd) for label, cmd in _commands(inline, "README.md") if len(_argv(cmd)) > 1]  # `mfrec plot` is a name
    return _commands(block, "README.md") + inline


def readme_python_blocks() -> list[tuple[str, str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    out, current, start = [], None, 0
    for number, line in enumerate(lines, 1):
        if current is None and line.strip() == "```python":
            current, start = [], number
        elif current is not None and line.startswith("```"):
            out.append((f"README.md:{start}", "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return out


def help_examples() -> list[tuple[str, str]]:
    """Every command line in the ``--help`` of every command (and of ``recommend interactive``)."""
    runner = CliRunner()
    out = []
    for name in COMMANDS:
        for argv in ([name, "--help"], *([[name, sub, "--help"] for sub in _subcommands(name)])):
            result = runner.invoke(main, argv)
            assert result.exit_code == 0, result.output
            description = result.output.split("\nOptions:")[0]  # option help is wrapped prose, not examples
            out += _commands(enumerate(description.splitlines(), 1), "mfrec " + " ".join(argv))
    return out


def _subcommands(name: str) -> list[str]:
    import importlib

    module, attr, _ = COMMANDS[name]
    command = getattr(importlib.import_module(module), attr)
    return sorted(getattr(command, "commands", {}))


def _argv(cmd: str) -> list[str]:
    """The example as mfrec's argv: ``python Main.py ...`` is ``mfrec train ...``; comments dropped."""
    words = shlex.split(cmd, comments=True)
    if words[0] == "python":
        return [SCRIPTS[words[1]], *words[2:]]
    return words[1:]


def unique(examples: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One (places, command) per distinct argv: an example written in several places runs once."""
    places: dict[tuple[str, ...], list[str]] = {}
    first: dict[tuple[str, ...], str] = {}
    for where, cmd in examples:
        key = tuple(_argv(cmd))
        places.setdefault(key, []).append(where)
        first.setdefault(key, cmd)
    return [(", ".join(places[key]), first[key]) for key in places]


EXAMPLES = unique(readme_examples() + help_examples())


# -- the generated data --------------------------------------------------------------------------
def _raw():
    """One synthetic dataset (whole stars, demographics) whose most-rated movies are named in TITLES."""
    import polars as pl

    from mfrec.data.synthetic import SyntheticSpec, generate

    raw = generate(SyntheticSpec(n_users=350, n_movies=250, n_ratings=8_000, seed=11))
    top = raw.ratings.group_by("movieId").len().sort(["len", "movieId"], descending=True)["movieId"].to_list()
    named = {mid: t for mid, t in zip(top, TITLES)}
    movies = raw.movies.with_columns(
        pl.col("movieId").replace_strict({m: t[0] for m, t in named.items()}, default=pl.col("title")).alias("title"),
        pl.col("movieId").replace_strict({m: t[1] for m, t in named.items()}, default=pl.col("year"),
                                         return_dtype=pl.Int32).alias("year"),
        pl.col("movieId").replace_strict({m: t[2] for m, t in named.items()}, default=pl.col("genres"),
                                         return_dtype=pl.List(pl.String)).alias("genres"),
    )
    return dataclasses.replace(raw, movies=movies)


def write_ml100k_release(raw, folder: Path, seed: int = 3) -> Path:
    """``raw`` in ml-100k's layout: u.data, u.item (ISO-8859-1, genre flags), u.genre, u.user, u1.base/u1.test."""
    folder.mkdir(parents=True, exist_ok=True)
    r = raw.ratings
    lines = [f"{u}\t{m}\t{int(x)}\t{t}\n" for u, m, x, t in r.select("userId", "movieId", "rating", "timestamp").rows()]
    (folder / "u.data").write_text("".join(lines))
    items = []
    for mid, title, year, genres in raw.movies.select("movieId", "title", "year", "genres").rows():
        flags = "|".join("1" if g in genres else "0" for g in GENRES_100K)
        items.append(f"{mid}|{title}|01-Jan-{year}||http://us.imdb.com/M/title-exact?{mid}|{flags}\n")
    (folder / "u.item").write_bytes("".join(items).encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n")
    users = raw.users.select("userId", "age", "gender", "occupation", "zip").rows()
    (folder / "u.user").write_text("".join(f"{u}|{a}|{g}|{OCCUPATIONS[o % len(OCCUPATIONS)]}|{z}\n" for u, a, g, o, z in users))
    test = np.random.default_rng(seed).random(len(lines)) < 0.2
    (folder / "u1.base").write_text("".join(line for line, t in zip(lines, test) if not t))
    (folder / "u1.test").write_text("".join(line for line, t in zip(lines, test) if t))
    return folder


def _write_imdb(raw, release: Path, imdb: Path) -> None:
    """links.csv for the first movies of ``release`` and IMDB title.basics / title.crew / name.basics for them."""
    ids = sorted(raw.movies["movieId"].to_list())[:20]
    (release / "links.csv").write_text("movieId,imdbId,tmdbId\n" + "".join(f"{m},{100000 + m},{m}\n" for m in ids))
    imdb.mkdir(parents=True)
    basics = "".join(f"tt{100000 + m:07d}\tmovie\tFilm {m}\t{80 + m % 60}\tDrama\n" for m in ids)
    crew = "".join(f"tt{100000 + m:07d}\tnm{m % 5:07d}\t\\N\n" for m in ids)
    names = "".join(f"nm{i:07d}\tDirector {i}\t1950\n" for i in range(5))
    (imdb / "title.basics.tsv").write_text("tconst\ttitleType\tprimaryTitle\truntimeMinutes\tgenres\n" + basics)
    (imdb / "title.crew.tsv").write_text("tconst\tdirectors\twriters\n" + crew)
    (imdb / "name.basics.tsv").write_text("nconst\tprimaryName\tbirthYear\n" + names)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A working folder with the sources, prepared datasets and runs the examples name; a local download server."""
    from mfrec.data import load
    from mfrec.data.movielens import canonical_test_pairs, read_dataset
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.synthetic import SyntheticSpec, generate
    from mfrec.data.writers import write_raw
    from mfrec.training import train_run

    work = tmp_path_factory.mktemp("examples")
    raw = _raw()
    src100k = write_ml100k_release(raw, work / "path" / "to" / "ml-100k")
    www = work.parent / f"{work.name}-www"
    www.mkdir()
    zip_folder(src100k, www / "ml-100k.zip", "ml-100k")
    for fmt in ("ml-1m", "ml-25m"):
        folder = write_raw(raw, work.parent / f"{work.name}-{fmt}" / fmt, fmt)
        if fmt == "ml-25m":
            _write_imdb(raw, folder, work / "path" / "to" / "imdb")
        zip_folder(folder, work / f"{fmt}.zip", fmt)
        zip_folder(folder, www / f"{fmt}.zip", fmt)
    # --ids-from takes ML-1M's catalogue and users (it generates ML-1M's 1M ratings over them)
    catalogue = generate(SyntheticSpec(n_users=6040, n_movies=3706, n_ratings=130_000, seed=12))
    meta = write_raw(catalogue, work / "path" / "to" / "ml-1m-meta", "ml-1m")
    (meta / "ratings.dat").unlink()

    root = work / "Training_data"
    raw100k = read_dataset("ml-100k", source=src100k)
    for spec, name in ((SplitSpec("u1"), "ml-100k-u1"), (SplitSpec("user-last", val_fraction=0.1, holdout=5), None),
                       (SplitSpec("random", 0.2, 0.1, seed=42), "demo")):
        prepare(raw100k, spec, name=name, root=root, canonical_test=lambda s: canonical_test_pairs(raw100k, s))
    runs = work / "Experiments_"
    train_run(load(root / "ml-100k-u1"), "mf-genre", {"factors": 8, "epochs": 2}, runs_root=runs)
    if HAS_TORCH:
        train_run(load(root / "ml-100k-u1"), "neumf", {"factors": 8, "epochs": 1}, runs_root=runs)
    train_run(load(root / "ml-100k-user-last"), "mf", {"factors": 8, "epochs": 2}, runs_root=runs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield work, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def in_workspace(workspace, monkeypatch):
    work, url = workspace
    monkeypatch.chdir(work)
    monkeypatch.setenv("MFREC_DOWNLOAD_BASE_URL", url)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return work


# -- running them --------------------------------------------------------------------------------
def as_run_here(argv: list[str]) -> list[str]:
    """The example's argv with the placeholders and the smaller sizes of this test."""
    out = [PLACEHOLDERS.get(word, word) for word in argv]
    for i in range(1, len(out)):
        out[i] = SMALLER.get((out[i - 1], out[i]), out[i])
    if out[0] == "train" and needs_torch(out) and "--epochs" not in out:
        out += NEURAL_EPOCHS
    return out


def needs_torch(argv: list[str]) -> bool:
    return any(word in NEURAL or word.endswith(tuple(f"-{m}" for m in NEURAL)) for word in argv)


def serve_once(monkeypatch) -> None:
    """``mfrec serve`` examples: instead of serving until stopped, the app answers one request and returns."""
    pytest.importorskip("fastapi", reason='mfrec serve needs the serve extra: pip install -e ".[serve]"')
    import importlib

    import uvicorn
    from fastapi.testclient import TestClient

    from mfrec.serve.app import SETTINGS_ENV, app_from_environment
    from mfrec.serve.balance import Dispatcher

    def run_once(app, host, port, factory=False, **kwargs):
        assert isinstance(host, str) and isinstance(port, int)
        if isinstance(app, str):  # --processes N: an import string, as uvicorn's worker processes get it
            module, _, name = app.partition(":")
            app = getattr(importlib.import_module(module), name)
            app = app() if factory else app
        with TestClient(app) as client:
            assert client.get("/api/v1/health").status_code == 200

    def dispatch_once(self):  # --processes N: each server process builds the app from the settings
        monkeypatch.setenv(SETTINGS_ENV, json.dumps(self.settings))
        run_once(app_from_environment(), self.host, self.port)
        return 0

    monkeypatch.setattr(uvicorn, "run", run_once)
    monkeypatch.setattr(Dispatcher, "run", dispatch_once)
    monkeypatch.delenv(SETTINGS_ENV, raising=False)


@pytest.mark.parametrize("where, cmd", EXAMPLES, ids=[f"{w.split(', ')[0]} {c}" for w, c in EXAMPLES])
def test_example_runs_as_written(in_workspace, monkeypatch, where, cmd):
    if cmd in SKIP:
        pytest.skip(SKIP[cmd])
    argv = _argv(cmd)
    if needs_torch(argv) and not HAS_TORCH:
        pytest.skip("needs the torch extra (pip install -e \".[torch]\")")
    if argv[0] == "serve":
        serve_once(monkeypatch)
    stdin = INTERACTIVE_INPUT if "interactive" in argv else None
    result = CliRunner().invoke(main, as_run_here(argv), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, f"{where}: {cmd}\nexit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output


@pytest.mark.parametrize("where, code", readme_python_blocks(), ids=[w for w, _ in readme_python_blocks()])
def test_readme_python_block_runs(in_workspace, where, code):
    if "import torch" in code and not HAS_TORCH:
        pytest.skip("needs the torch extra")
    exec(compile(code, where, "exec"), {"__name__": "readme_example"})  # noqa: S102 (the README's own code)


def test_examples_are_found():
    """The extraction sees the README's and the help texts' examples (a broken parser must not pass vacuously)."""
    sources = {w.split(":")[0] for places, _ in EXAMPLES for w in places.split(", ")}
    assert "README.md" in sources and any(s.startswith("mfrec evaluate") for s in sources)
    commands = {_argv(c)[0] for _, c in EXAMPLES}
    assert {"prepare", "train", "recommend", "analyze", "plot", "compare", "evaluate"} <= commands
    assert len(readme_python_blocks()) >= 2


def test_similar_without_experiment_passes_over_a_newer_bias_run(in_workspace):
    """`Inference.py --similar` with no --experiment takes the newest run that can answer it: a bias
    run has no movie factors, so a newer one is passed over (it was picked, and refused)."""
    from mfrec.data import load
    from mfrec.training import train_run

    bias, _ = train_run(load("Training_data/demo"), "bias", {"epochs": 1}, runs_root="Experiments_", name="newest-bias")
    result = CliRunner().invoke(main, ["recommend", "--similar", "Godfather, The"])
    assert result.exit_code == 0, result.output
    assert f"passed over the newer {bias.path.name} (bias)" in result.output
