"""One name and one default per concept across the command line and the Python API (issue 16).

- ``--data-root`` / ``data_root=`` is Training_data/, ``--runs-root`` / ``runs_root=`` is Experiments_/,
  ``--top`` / ``top=`` a list's length, ``--rate`` / ``rate=`` a made-up user's ratings; the old
  spellings (``--root``, ``--runs-dir``, ``-k``, ``n=``, ``ratings=``, ``root=``) still work, hidden.
- Inference.py and ``exp.recommend`` read one set of defaults and give the same list.
"""

from __future__ import annotations

import inspect
import re
import warnings

import pytest
from click.testing import CliRunner

from mfrec.inference.defaults import DEFAULTS


def _commands():
    from mfrec.cli import COMMANDS, main

    out = {}
    for name in COMMANDS:
        cmd = main.get_command(None, name)
        out[name] = cmd
        for sub, subcmd in getattr(cmd, "commands", {}).items():
            out[f"{name} {sub}"] = subcmd
    return out


# -- the command line: one visible name per concept --------------------------------------------------
CONCEPTS = {  # parameter name -> (its one flag, the default folder or None)
    "data_root": ("--data-root", "Training_data"),
    "runs_root": ("--runs-root", "Experiments_"),
    "top": ("--top", None),
}


def test_every_command_spells_a_concept_one_way():
    seen = set()
    for name, cmd in _commands().items():
        for p in cmd.params:
            opts = set(p.opts) | set(p.secondary_opts)
            assert not opts & {"--root", "--runs-dir", "-k", "--k"}, f"{name} still shows {opts}"
            if p.name in CONCEPTS:
                flag, default = CONCEPTS[p.name]
                seen.add(p.name)
                assert flag in opts, f"{name}: {p.name} is spelled {opts}, not {flag}"
                if default is not None:
                    assert p.default == default, f"{name}: {flag} defaults to {p.default!r}"
            if p.name == "top":
                assert "-n" in opts, f"{name}: --top has no -n"
    assert seen == set(CONCEPTS)


def _params(cmd, args):
    return dict(cmd.make_context("x", list(args)).params)


OLD_AND_NEW = [  # (command, old spelling, new spelling): the same parameters either way
    ("prepare", ["--root", "TD"], ["--data-root", "TD"]),
    ("analyze", ["--data", "d", "--root", "TD"], ["--data", "d", "--data-root", "TD"]),
    ("train", ["--data", "d", "--root", "E"], ["--data", "d", "--runs-root", "E"]),
    ("plot", ["-e", "r", "--root=E"], ["-e", "r", "--runs-root=E"]),
    ("compare", ["r", "--root", "E"], ["r", "--runs-root", "E"]),
    ("evaluate", ["-e", "r", "--root", "E", "-k", "5"], ["-e", "r", "--runs-root", "E", "--top", "5"]),
    ("evaluate", ["-e", "r", "-k5"], ["-e", "r", "-n", "5"]),
    ("evaluate", ["-e", "r", "--k=5"], ["-e", "r", "--top=5"]),
    ("recommend", ["--runs-dir", "E", "--like", "x"], ["--runs-root", "E", "--like", "x"]),
    ("recommend interactive", ["--runs-dir", "E"], ["--runs-root", "E"]),
]


@pytest.mark.parametrize("name,old,new", OLD_AND_NEW, ids=lambda v: v if isinstance(v, str) else None)
def test_old_spellings_still_work_hidden_with_a_warning(name, old, new):
    cmd = _commands()[name]
    with pytest.warns(FutureWarning) as caught:
        assert _params(cmd, new) == _params(cmd, old)
    notes = [str(w.message) for w in caught if w.category is FutureWarning]  # one per old spelling used
    assert notes and all(re.fullmatch(r"\S+ is now (--data-root|--runs-root|--top); the old spelling goes "
                                      r"in the next release", line) for line in notes), notes
    help_text = cmd.get_help(cmd.make_context("x", ["--help"], resilient_parsing=True))
    for spelling in ("--root", "--runs-dir", "-k"):
        assert not re.search(rf"(?<![\w-]){spelling}\b", help_text), f"{name} --help shows {spelling}"


def test_respell_leaves_values_after_double_dash_and_other_options_alone():
    from mfrec.cli.common import respell

    renamed = {"--root": "--runs-root", "-k": "--top"}
    assert respell(["--rooted", "-e", "x", "--", "--root"], renamed) == ["--rooted", "-e", "x", "--", "--root"]
    assert respell(["-k", "3", "--root=a"], renamed) == ["--top", "3", "--runs-root=a"]


# -- one set of defaults -------------------------------------------------------------------------------
def _default(fn, name):
    return inspect.signature(fn).parameters[name].default


def test_cli_and_api_read_one_set_of_defaults():
    from mfrec.inference.api import LoadedExperiment, run_request
    from mfrec.inference.interactive import Session, run_loop

    commands = _commands()
    for name in ("recommend", "recommend interactive"):
        opts = {p.name: p.default for p in commands[name].params}
        assert opts["top"] == DEFAULTS.top and opts["min_ratings"] == DEFAULTS.min_ratings
    assert {p.name: p.default for p in commands["recommend"].params}["exclude"] == DEFAULTS.exclude
    for fn in (run_request, LoadedExperiment.recommend, LoadedExperiment.similar, LoadedExperiment.explain,
               run_loop, Session.__init__):
        assert _default(fn, "top") == DEFAULTS.top, fn
        assert _default(fn, "min_ratings") == DEFAULTS.min_ratings, fn
    for fn in (run_request, LoadedExperiment.recommend):
        assert _default(fn, "exclude") == DEFAULTS.exclude


# -- the same list from the command line and from Python ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A prepared dataset with rarely rated movies and a tiny mf run, both made through the CLI."""
    import numpy as np

    from mfrec.cli.prepare import prepare
    from mfrec.cli.train import train
    from mfrec.data import load

    base = tmp_path_factory.mktemp("vocab")
    runner = CliRunner()
    res = runner.invoke(prepare, ["--data-root", str(base / "TD"), "--ratings", "3000", "--users", "150", "--movies", "120",
                                  "--seed", "5", "--test-fraction", "0.1", "--name", "tiny", "--quiet"])
    assert res.exit_code == 0, res.output
    ds = load("tiny", data_root=base / "TD")
    counts = np.diff(np.asarray(ds.train_by_movie.indptr))
    assert (counts < DEFAULTS.min_ratings).sum() > 5  # rare movies, so that the min-ratings default matters
    res = runner.invoke(train, ["--data", "tiny", "--data-root", str(base / "TD"), "--model", "mf", "--factors", "4",
                                "--epochs", "2", "--runs-root", str(base / "E"), "--name", "tiny-mf", "--quiet"])
    assert res.exit_code == 0, res.output
    movies = ds.movies.sort("movie")
    order = np.argsort(counts)  # rarest first
    return {"base": base, "ds": ds, "counts": counts, "titles": movies["title"].to_list(),
            "rare": [movies["title"][int(i)] for i in order[:3]], "user": int(ds.user_ids.ids[0])}


def _cli_list(tiny, args, label):
    import polars as pl

    from mfrec.cli.recommend import recommend

    base = tiny["base"]
    res = CliRunner().invoke(recommend, ["-e", "tiny-mf", "--runs-root", str(base / "E"), "--out-dir", str(base / "P"),
                                         "--label", label, *args])
    assert res.exit_code == 0, res.output
    run = next((base / "E").iterdir()).name
    return pl.read_csv(base / "P" / run / f"{label}.csv")["movieId"].to_list()


def test_api_and_cli_give_the_same_list_with_their_defaults(tiny):
    from mfrec import load_experiment

    exp = load_experiment("tiny-mf", runs_root=tiny["base"] / "E")
    liked, disliked = tiny["rare"][0], tiny["titles"][5]
    requests = [  # (CLI arguments, the same request in Python)
        (["--like", liked, "--rate", f"{disliked}=1"], lambda **kw: exp.recommend(rate={disliked: 1}, like=[liked], **kw)),
        (["--rate", f"{liked}=5", "--rate", f"{disliked}=1"], lambda **kw: exp.recommend([f"{liked}=5", (disliked, 1)], **kw)),
        (["--user", str(tiny["user"])], lambda **kw: exp.recommend(user=tiny["user"], **kw)),
        (["--similar", tiny["titles"][7]], lambda **kw: exp.similar(tiny["titles"][7], **kw)),
    ]
    differs = 0
    for i, (args, api) in enumerate(requests):
        table = api()
        assert _cli_list(tiny, args, f"q{i}") == table["movieId"].to_list(), args
        assert table.height == DEFAULTS.top
        differs += api(min_ratings=0)["movieId"].to_list() != table["movieId"].to_list()
    assert differs  # the default filter changes some list: the defaults are really compared


def test_explain_lists_what_recommend_lists(tiny):
    from mfrec import load_experiment

    exp = load_experiment("tiny-mf", runs_root=tiny["base"] / "E")
    like = tiny["rare"][:2]
    explained = exp.explain(like=like)["movieId"].unique(maintain_order=True).to_list()
    assert explained == exp.recommend(like=like)["movieId"].to_list()


# -- Python keywords: new names, old ones kept with a DeprecationWarning ----------------------------------
def test_old_python_keywords_warn_and_give_the_same_answer(tiny):
    from mfrec import load_experiment
    from mfrec.data import load

    base = tiny["base"]
    with pytest.warns(DeprecationWarning, match=r"root= is now data_root="):
        assert load("tiny", root=base / "TD").path == tiny["ds"].path
    with pytest.warns(DeprecationWarning, match=r"root= is now runs_root="):
        exp = load_experiment("tiny-mf", root=base / "E")
    liked = tiny["titles"][3]
    new = exp.recommend(rate={liked: 5}, top=4)
    with pytest.warns(DeprecationWarning) as caught:
        old = exp.recommend(ratings={liked: 5}, n=4)
    said = " ".join(str(w.message) for w in caught if w.category is DeprecationWarning)
    assert "ratings= is now rate=" in said and "n= is now top=" in said
    assert old.equals(new) and exp.recommend({liked: 5}, top=4).equals(new)
    with pytest.raises(TypeError, match="both"):
        exp.recommend(like=[liked], n=3, top=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names never warn
        exp.similar(liked, top=3)
        exp.fold_in(rate={liked: 5})


def test_public_functions_show_only_the_new_keywords():
    from mfrec.cli.analyze import run_analysis
    from mfrec.data import load
    from mfrec.inference.api import LoadedExperiment, load_experiment, run_request
    from mfrec.training import evaluate_run, popularity_run, train_run

    expected = {load: {"data_root"}, run_analysis: {"data_root"}, load_experiment: {"runs_root"},
                train_run: {"runs_root"}, popularity_run: {"runs_root", "top"}, evaluate_run: {"top"},
                run_request: {"rate", "top"}, LoadedExperiment.recommend: {"rate", "top"},
                LoadedExperiment.similar: {"top"}, LoadedExperiment.explain: {"rate", "top"},
                LoadedExperiment.fold_in: {"rate"}}
    for fn, names in expected.items():
        params = set(inspect.signature(fn).parameters)
        assert names <= params, fn
        assert not params & {"root", "n", "k", "ratings"}, fn
