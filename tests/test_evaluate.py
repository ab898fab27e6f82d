"""mfrec evaluate and the protocols: ALS and popularity runs, results recorded for mfrec compare."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mfrec.cli.evaluate import evaluate
from mfrec.errors import DataError, ModelError
from mfrec.evaluation.protocols import history_and_targets, ranking_protocol, rating_protocol


@pytest.fixture(scope="module")
def last_dataset(tmp_path_factory, small_raw):
    """small_raw with a user-last split: 4 test and 4 validation ratings per user."""
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec

    root = tmp_path_factory.mktemp("td")
    out, _ = prepare(small_raw, SplitSpec("user-last", holdout=4, val_fraction=0.1), name="last", root=root)
    return load(out)


class Oracle:
    """Scores a user's test movies highest: every metric that can be perfect is."""

    def __init__(self, ds):
        self.ds = ds

    def score_users(self, users):
        s = np.zeros((len(users), self.ds.n_movies), np.float32)
        t = self.ds.test
        for i, u in enumerate(users):
            s[i, np.asarray(t.movie)[np.asarray(t.user) == u]] = 1.0
        return s


def test_ranking_protocol_on_an_oracle_and_history(last_dataset):
    res = ranking_protocol(Oracle(last_dataset), last_dataset)
    assert res["hit@10"] == 1.0 and res["ndcg@10"] == pytest.approx(1.0) and res["recall@10"] == 1.0
    assert res["users_evaluated"] == last_dataset.n_users
    (hptr, hidx), (tptr, tidx) = history_and_targets(last_dataset)
    # history = train + val; never overlapping a user's test movies
    assert hptr[-1] == len(last_dataset.train) + len(last_dataset.val)
    for u in range(0, last_dataset.n_users, 37):
        assert not set(hidx[hptr[u]:hptr[u + 1]]) & set(tidx[tptr[u]:tptr[u + 1]])


def test_ranking_protocol_needs_user_last(small_dataset):
    with pytest.raises(DataError, match="needs a user-last split"):
        ranking_protocol(Oracle(small_dataset), small_dataset)


def test_rating_protocol_matches_a_hand_computation(last_dataset):
    class Const:
        def predict(self, u, m):
            return np.full(len(u), 3.0, np.float32)

    res = rating_protocol(Const(), last_dataset)
    r = np.asarray(last_dataset.test.rating, np.float64)
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean((r - 3) ** 2)))
    assert res["mae"] == pytest.approx(np.mean(np.abs(r - 3)))

    class Ranker:
        def score_users(self, u):
            return np.zeros((len(u), 3))

    with pytest.raises(ModelError, match="does not predict ratings"):
        rating_protocol(Ranker(), last_dataset)


def test_popularity_run_and_als_run_side_by_side(last_dataset, tmp_path):
    from mfrec.cli.train import train

    root = str(tmp_path / "E")
    r = CliRunner().invoke(evaluate, ["--popularity", "--data", str(last_dataset.path), "--runs-root", root, "--quiet"])
    assert r.exit_code == 0, r.output
    (pop,) = [p for p in (tmp_path / "E").iterdir()]
    s = json.loads((pop / "summary.json").read_text())
    assert s["status"] == "ok" and s["model"] == "popularity" and 0 <= s["hit@10"] <= 1
    assert (pop / "config.json").is_file() and (pop / "metrics.csv").is_file() and (pop / "train.log").is_file()
    # the popularity baseline re-evaluates from its folder to the same numbers
    r = CliRunner().invoke(evaluate, ["--experiment", str(pop), "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads((pop / "summary.json").read_text())["ndcg@10"] == pytest.approx(s["ndcg@10"])

    r = CliRunner().invoke(train, ["--data", str(last_dataset.path), "--model", "mf", "--epochs", "3", "--factors", "4",
                                   "--runs-root", root, "--name", "als", "--quiet"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(evaluate, ["--experiment", "als", "--runs-root", root, "--quiet"])  # user-last: ranking by default
    assert r.exit_code == 0, r.output
    assert "hit@10" in r.output
    als = next(p for p in (tmp_path / "E").iterdir() if p.name.startswith("als-"))
    summ = json.loads((als / "summary.json").read_text())
    ev = json.loads((als / "evaluation.json").read_text())
    assert summ["hit@10"] == ev["ranking"]["hit@10"] and summ["ranking_split"] == "user-last"
    r = CliRunner().invoke(evaluate, ["--experiment", str(als), "--protocol", "rating", "--quiet"])
    assert r.exit_code == 0, r.output
    ev = json.loads((als / "evaluation.json").read_text())
    assert set(ev) == {"ranking", "rating"}
    assert ev["rating"]["rmse"] == pytest.approx(summ["test_rmse"], rel=1e-5)  # the same number training recorded

    from mfrec.analysis.runs import comparison_table

    table = comparison_table([pop, als])
    assert {"hit@10", "ndcg@10"} <= set(table.columns) and table.height == 2


def test_evaluate_errors_are_one_sentence(small_dataset, tmp_path):
    r = CliRunner().invoke(evaluate, ["--popularity", "--data", str(small_dataset.path), "--runs-root", str(tmp_path)])
    assert r.exit_code == 2 and "needs a user-last split" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(evaluate, ["--experiment", "no-such-run", "--runs-root", str(tmp_path)])
    assert r.exit_code == 2 and "no experiment" in r.output
    r = CliRunner().invoke(evaluate, [])
    assert r.exit_code == 2 and "--experiment" in r.output


def test_a_popularity_run_has_no_summary_until_its_evaluation_is_done(last_dataset, tmp_path, monkeypatch):
    """Killed during its ranking evaluation, a popularity run must not look finished: summary.json
    (status ok) is written only after the evaluation."""
    import mfrec.evaluation.protocols as protocols
    from mfrec.training import popularity_run

    real = protocols.ranking_protocol
    seen = []

    def watching(model, dataset, **kw):
        seen.append([p.name for p in tmp_path.glob("*/summary.json")])
        return real(model, dataset, **kw)

    monkeypatch.setattr(protocols, "ranking_protocol", watching)
    path, summary = popularity_run(last_dataset, runs_root=tmp_path)
    assert seen == [[]]  # no summary.json while the evaluation ran
    assert summary["status"] == "ok" and summary["hit@10"] is not None
    assert json.loads((path / "summary.json").read_text())["hit@10"] == summary["hit@10"]
