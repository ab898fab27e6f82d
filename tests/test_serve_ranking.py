"""mfrec serve's rank_by (another run ranks the list, Inference.py --rank-by) and a bayes run's posterior sd and
lower_bound (Inference.py --lower-bound), through FastAPI's TestClient: the same lists as the inference code
gives, and each error path a 4xx with one sentence."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi", reason='mfrec serve needs the serve extra: pip install -e ".[serve]"')

from fastapi.testclient import TestClient  # noqa: E402
from test_serve_api import API, assert_error, same_list  # noqa: E402


@pytest.fixture(scope="module")
def ranked(tmp_path_factory, small_dataset):
    """An mf run and an ials run on the same data (so auto finds the ials run), and an mf run alone."""
    from mfrec.training import train_run

    root = tmp_path_factory.mktemp("Experiments_")
    mf, _ = train_run(small_dataset, "mf", {"factors": 4, "epochs": 2}, runs_root=root, name="mf")
    ials, _ = train_run(small_dataset, "ials", {"factors": 4, "epochs": 2}, runs_root=root, name="ials")
    alone = tmp_path_factory.mktemp("Alone")
    solo, _ = train_run(small_dataset, "mf", {"factors": 4, "epochs": 2}, runs_root=alone, name="solo")
    return root, mf.path, ials.path, alone, solo.path


def served(run, rank_by="auto", runs_root=None):
    from mfrec import load_experiment
    from mfrec.serve import create_app
    from mfrec.serve.service import Service, load_ranker

    exp = load_experiment(run)
    ranker, note, _ = load_ranker(exp, rank_by, runs_root)
    return exp, TestClient(create_app(Service(exp, None, ranker, note)), raise_server_exceptions=False)


def liked(ds, n=2):
    pop = np.diff(np.asarray(ds.train_by_movie.indptr))
    return [int(ds.movie_ids.ids[m]) for m in np.argsort(-pop, kind="stable")[:n]]


def test_rank_by_auto_ranks_with_the_ials_run_and_predicts_with_the_served_one(ranked, small_dataset):
    from mfrec.inference.rankers import open_ranker, ranked_request

    root, mf, ials, _, _ = ranked
    ids = liked(small_dataset)
    body = {"ratings": [{"movie": m, "rating": 5} for m in ids], "top": 5, "min_ratings": 0}
    exp, client = served(mf, "auto", root)
    ranker = open_ranker(str(ials), exp, root)[0]
    with client as c:
        info = c.get(f"{API}/model").json()
        assert info["ranker"]["kind"] == "ials" and info["ranker"]["run"] == ials.name
        data = c.post(f"{API}/recommendations", json=body).json()
        assert data["ranked_by"] == "rank_score" and data["ranker"]["run"] == ials.name
        want = ranked_request(exp.recommender, ranker, rate=[(str(m), 5.0) for m in ids], top=5, min_ratings=0)
        same_list(data["items"], want.table)
        assert [i["score"] for i in data["items"]] == pytest.approx(want.table["rank_score"].to_list())
        assert any(f"ranked by run {ials.name} (ials" in n for n in data["notes"])
        # the same run by its kind or name; none, explain and dislikes keep mf's own ranking
        for rank_by in ("ials", ials.name):
            again = c.post(f"{API}/recommendations", json={**body, "rank_by": rank_by}).json()
            assert again["items"] == data["items"]
        for extra in ({"rank_by": "none"}, {"explain": True}, {"dislikes": "down-only"}):
            own = c.post(f"{API}/recommendations", json={**body, **extra}).json()
            assert own["ranked_by"] == "score" and own["ranker"] is None, extra
        # an existing user's list, ranked the same way
        uid = str(int(small_dataset.user_ids.ids[2]))
        user = c.get(f"{API}/users/{uid}/recommendations", params={"top": 4, "min_ratings": 0}).json()
        same_list(user["items"], ranked_request(exp.recommender, ranker, user=uid, top=4, min_ratings=0).table)
        assert user["ranker"]["kind"] == "ials"


def test_rank_by_errors_are_one_sentence(ranked, small_dataset):
    root, mf, _, alone, solo = ranked
    ids = liked(small_dataset)
    body = {"ratings": [{"movie": ids[0], "rating": 5}], "top": 3}
    _, client = served(solo, "auto", alone)  # no ials or ease run beside it
    with client as c:
        assert c.get(f"{API}/model").json()["ranker"] is None
        assert c.post(f"{API}/recommendations", json=body).json()["ranked_by"] == "score"  # auto: its own list
        assert_error(c.post(f"{API}/recommendations", json={**body, "rank_by": "ials"}), 404, "no ranking run found")
    _, client = served(mf, "auto", root)
    with client as c:
        assert_error(c.post(f"{API}/recommendations", json={**body, "rank_by": "ease"}), 404, "ranks with ials run")
        assert_error(c.post(f"{API}/recommendations", json={**body, "rank_by": "ials", "explain": True}), 400,
                     "give them without --rank-by")
        uid = str(int(small_dataset.user_ids.ids[0]))
        assert_error(c.get(f"{API}/users/{uid}/recommendations", params={"rank_by": "popularity"}), 404, "ials")
        assert_error(c.post(f"{API}/recommendations", json={**body, "rank_by": "x" * 201}), 422, "rank_by")


def test_a_request_never_names_a_run_to_load(ranked, small_dataset, monkeypatch):
    """rank_by picks among what the server loaded at start; a run folder in a request is refused, unread."""
    import mfrec.inference.api as api

    root, mf, _, _, _ = ranked
    _, client = served(mf, "auto", root)
    loads = []
    monkeypatch.setattr(api, "load_experiment", lambda *a, **k: loads.append(a))
    with client as c:
        body = {"ratings": [{"movie": liked(small_dataset)[0], "rating": 5}], "rank_by": str(mf)}
        assert_error(c.post(f"{API}/recommendations", json=body), 404, "ranks with ials run")
    assert loads == []


def test_rank_by_auto_finds_the_ranker_the_command_line_finds(ranked):
    from mfrec import load_experiment
    from mfrec.inference.rankers import choose_ranker

    root, mf, ials, alone, solo = ranked
    exp = load_experiment(mf)
    assert choose_ranker(exp, "auto", "like", False, "score", root)[0] == str(ials)
    for args in (("users", False, "score", 0.0), ("like", True, "score", 0.0), ("like", False, "down-only", 0.0),
                 ("user", False, "score", 1.0)):
        assert choose_ranker(exp, "auto", args[0], args[1], args[2], root, args[3]) == (None, None), args
    assert choose_ranker(load_experiment(solo), "auto", "like", False, "score", alone) == (None, None)


@pytest.fixture(scope="module")
def bayes_run(tmp_path_factory, small_dataset):
    from mfrec.training import train_run

    run, _ = train_run(small_dataset, "bayes", {"factors": 4, "samples": 10, "burn_in": 2},
                       runs_root=tmp_path_factory.mktemp("Bayes"))
    return run.path


def test_bayes_lists_carry_the_posterior_sd_and_rank_by_the_lower_bound(bayes_run, small_dataset):
    from mfrec.inference.api import run_request

    exp, client = served(bayes_run, "none")
    rec = exp.recommender
    ids = liked(small_dataset, 3)
    body = {"ratings": [{"movie": m, "rating": 5} for m in ids], "top": 8, "min_ratings": 0}
    uid = str(int(small_dataset.user_ids.ids[0]))
    with client as c:
        assert c.get(f"{API}/model").json()["posterior_sd"] is True
        plain = c.post(f"{API}/recommendations", json=body).json()
        want = run_request(rec, rate={str(m): 5 for m in ids}, top=8, min_ratings=0).table
        same_list(plain["items"], want)
        assert [i["sd"] for i in plain["items"]] == pytest.approx(want["uncertainty"].to_list())
        assert all(i["sd"] > 0 for i in plain["items"])
        sure = c.post(f"{API}/recommendations", json={**body, "lower_bound": 2}).json()
        want = run_request(rec, rate={str(m): 5 for m in ids}, top=8, min_ratings=0, lower_bound=2.0).table
        same_list(sure["items"], want)
        bound = [i["score"] - 2 * i["sd"] for i in sure["items"]]
        assert bound == sorted(bound, reverse=True) and any("lower bound" in n for n in sure["notes"])
        assert rec.lower_bound == 0.0  # a request's bound is its own: the shared recommender is untouched
        user = c.get(f"{API}/users/{uid}/recommendations", params={"lower_bound": 1, "top": 6}).json()
        same_list(user["items"], run_request(rec, user=uid, top=6, lower_bound=1.0).table)
        assert all(i["sd"] > 0 for i in user["items"])
        assert_error(c.post(f"{API}/recommendations", json={**body, "lower_bound": -1}), 422, "positive number")


def test_lower_bound_of_a_run_without_samples_is_400(ranked, small_dataset):
    _, _, _, alone, solo = ranked
    _, client = served(solo, "none", alone)
    ids = liked(small_dataset)
    with client as c:
        assert c.get(f"{API}/model").json()["posterior_sd"] is False
        items = c.post(f"{API}/recommendations", json={"ratings": [{"movie": ids[0], "rating": 5}]}).json()["items"]
        assert items and all(i["sd"] is None for i in items)
        body = {"ratings": [{"movie": ids[0], "rating": 5}], "lower_bound": 1}
        assert_error(c.post(f"{API}/recommendations", json=body), 400, "only a bayes run with kept samples")
        uid = str(int(small_dataset.user_ids.ids[0]))
        assert_error(c.get(f"{API}/users/{uid}/recommendations", params={"lower_bound": 1}), 400, "posterior sd")


def test_openapi_documents_rank_by_lower_bound_and_sd(ranked):
    root, mf, _, _, _ = ranked
    _, client = served(mf, "none", root)
    with client as c:
        spec = c.get(f"{API}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"rank_by", "lower_bound"} <= set(schemas["MadeUpUserRequest"]["properties"])
    assert "sd" in schemas["Item"]["properties"] and "ranker" in schemas["RecommendationList"]["properties"]
    params = {p["name"] for p in spec["paths"][f"{API}/users/{{user_id}}/recommendations"]["get"]["parameters"]}
    assert {"rank_by", "lower_bound"} <= params
