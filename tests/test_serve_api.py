"""mfrec serve's JSON API through FastAPI's TestClient: every endpoint, every error path, the caps.

The answers must be the inference code's own (``run_request``), for every model kind; bad input must
be a 4xx with one sentence in ``{"error": ...}``, never a 500 or a traceback.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("fastapi", reason='mfrec serve needs the serve extra: pip install -e ".[serve]"')

from fastapi.testclient import TestClient  # noqa: E402

from test_inference import make_run  # noqa: E402

API = "/api/v1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_dataset):
    root = tmp_path_factory.mktemp("Experiments_")
    return {m: make_run(root, small_dataset, m) for m in ("mf-genre", "mf", "bias")}


@pytest.fixture(scope="module")
def exp(runs):
    from mfrec import load_experiment

    return load_experiment(runs["mf-genre"])


def client_for(experiment, **caps):
    from mfrec.serve import create_app

    return TestClient(create_app(experiment, **caps), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(exp):
    with client_for(exp, max_ratings=20, max_top=25, max_group=3, max_body_bytes=4096, workers=2) as c:
        yield c


def titles(small_dataset, n=6):
    """The n most-rated titles of the dataset (distinct, unambiguous by full title)."""
    import numpy as np

    rec_pop = np.diff(np.asarray(small_dataset.train_by_movie.indptr))
    movies = small_dataset.movies.sort("movie")
    order = np.argsort(-rec_pop, kind="stable")
    return [movies["title"][int(i)] for i in order[:n]], [int(movies["movieId"][int(i)]) for i in order[:n]]


def assert_error(r, status, *words):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "status"} and body["status"] == status
    assert "Traceback" not in body["error"] and "\n" not in body["error"] and body["error"].strip()
    for w in words:
        assert w.lower() in body["error"].lower(), body["error"]
    return body


def same_list(api_items, table):
    assert [i["movieId"] for i in api_items] == table["movieId"].to_list()
    assert [i["why"] for i in api_items] == table["why"].to_list()
    if "predicted_rating" in table.columns:
        assert [i["predicted_rating"] for i in api_items] == pytest.approx(table["predicted_rating"].to_list())


# -- the endpoints --------------------------------------------------------------------------------
def test_health_and_model_info(client, exp, small_dataset):
    assert client.get(f"{API}/health").json() == {"status": "ok", "run": exp.name, "process": os.getpid()}
    info = client.get(f"{API}/model").json()
    assert info["run"] == exp.name and info["model"] == "mf-genre" and info["dataset"] == small_dataset.name
    assert info["movies"] == small_dataset.n_movies and info["users"] == small_dataset.n_users
    assert info["genres"] == list(small_dataset.genres) and info["rating_scale"] == [1.0, 5.0]
    assert info["caps"]["max_top"] == 25 and info["caps"]["workers"] == 2
    assert {"like", "user", "users", "similar"} <= set(info["supports"])


def test_scoring_runs_on_a_limited_thread_pool(client):
    """The documented concurrency: a CapacityLimiter with `workers` tokens guards the scoring threads."""
    assert client.app.state.limiter.total_tokens == 2


def test_search_is_the_cli_title_matching(client, exp, small_dataset):
    names, ids = titles(small_dataset)
    rec = exp.recommender
    r = client.get(f"{API}/movies/search", params={"q": names[0].lower()}).json()
    assert r["movies"][0]["movieId"] == ids[0]  # the exact match first
    word = max(names[0][:-7].split(), key=len)  # the longest word of the title, without the year
    r = client.get(f"{API}/movies/search", params={"q": word, "limit": 3}).json()
    try:
        exact = [rec.titles.resolve(word)]
    except Exception:  # the word names several films: the search alone
        exact = []
    expected = list(dict.fromkeys(exact + rec.titles.search(word, limit=3)))[:3]
    assert [m["movieId"] for m in r["movies"]] == [int(rec.movie_id_array[m]) for m in expected]
    typo = names[1][:-8].replace("e", "", 1)  # drop the year and one letter
    got = client.get(f"{API}/movies/search", params={"q": typo}).json()["movies"]
    assert ids[1] in [m["movieId"] for m in got]
    assert_error(client.get(f"{API}/movies/search", params={"q": "  "}), 422, "title")
    assert_error(client.get(f"{API}/movies/search", params={"q": "x", "limit": 51}), 422, "limit", "50")
    assert_error(client.get(f"{API}/movies/search"), 422, "q", "required")


def test_made_up_user_is_run_request(client, exp, small_dataset):
    from mfrec.inference.api import run_request

    names, ids = titles(small_dataset)
    body = {"ratings": [{"movie": names[0], "rating": 5}, {"movie": ids[1], "rating": 2}], "top": 7}
    r = client.post(f"{API}/recommendations", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    want = run_request(exp.recommender, rate={names[0]: 5, str(ids[1]): 2}, top=7)
    assert any(n.startswith("title: ") and names[0] in n for n in data["notes"])  # what each title matched
    same_list(data["items"], want.table)
    assert data["notes"] == want.notes and data["ranked_by"] == "score" and len(data["items"]) == 7
    assert [(m["movieId"], m["rating"]) for m in data["rated"]] == [(ids[0], 5.0), (ids[1], 2.0)]
    assert not {ids[0], ids[1]} & {i["movieId"] for i in data["items"]}  # rated movies never come back


def test_made_up_user_filters_explain_and_repeats(client, exp, small_dataset):
    from mfrec.inference.api import run_request

    names, ids = titles(small_dataset)
    body = {"ratings": [{"movie": ids[0], "rating": 1}, {"movie": ids[2], "rating": 4}, {"movie": ids[0], "rating": 5}],
            "top": 5, "genres": ["drama"], "years": "1980-2005", "min_ratings": 3, "explain": True,
            "dislikes": "down-only"}
    data = client.post(f"{API}/recommendations", json=body).json()
    want = run_request(exp.recommender, rate=[(str(ids[0]), 1), (str(ids[2]), 4), (str(ids[0]), 5)], top=5,
                       genre=["drama"], years="1980-2005", min_ratings=3, explain=True, dislikes="down-only")
    same_list(data["items"], want.table)
    assert all("Drama" in i["genres"] and 1980 <= i["year"] <= 2005 for i in data["items"])
    assert all(i["details"] and i["details"] == want.details[i["rank"]] for i in data["items"])
    assert [(m["movieId"], m["rating"]) for m in data["rated"]] == [(ids[2], 4.0), (ids[0], 5.0)]  # last rating wins


def test_existing_user_and_group_are_run_request(client, exp, small_dataset):
    from mfrec.inference.api import run_request

    uid = int(small_dataset.user_ids.ids[3])
    other = int(small_dataset.user_ids.ids[8])
    data = client.get(f"{API}/users/{uid}/recommendations", params={"top": 6, "exclude": "train"}).json()
    same_list(data["items"], run_request(exp.recommender, user=uid, top=6, exclude="train").table)
    data = client.get(f"{API}/users/{uid}/recommendations", params={"genre": ["Comedy", "Action"], "years": "1990-"}).json()
    want = run_request(exp.recommender, user=uid, genre=["Comedy", "Action"], years="1990-")
    same_list(data["items"], want.table)
    data = client.get(f"{API}/groups/recommendations", params={"users": f"{uid},{other}", "top": 4}).json()
    want = run_request(exp.recommender, users=[str(uid), str(other)], top=4)
    same_list(data["items"], want.table)
    assert data["notes"] == want.notes


def test_similar_and_popular(client, exp, small_dataset):
    from mfrec.inference.api import run_request

    names, ids = titles(small_dataset)
    data = client.get(f"{API}/movies/similar", params={"movie": names[2], "top": 5, "min_ratings": 0}).json()
    want = run_request(exp.recommender, similar=names[2], top=5, min_ratings=0)
    same_list(data["items"], want.table)
    assert data["ranked_by"] == "cosine" and data["movie"]["movieId"] == ids[2]
    assert all(i["predicted_rating"] is None and -1 <= i["score"] <= 1 for i in data["items"])
    by_id = client.get(f"{API}/movies/similar", params={"movie": ids[2], "top": 5, "min_ratings": 0}).json()
    assert by_id["items"] == data["items"]
    pop = client.get(f"{API}/movies/popular", params={"top": 4, "exclude": [ids[0], names[1]]}).json()
    assert [i["movieId"] for i in pop["items"]] == ids[2:6] and pop["ranked_by"] == "training_ratings"
    comedy = client.get(f"{API}/movies/popular", params={"top": 5, "genre": "Comedy"}).json()
    assert comedy["items"] and all("Comedy" in i["genres"] for i in comedy["items"])


@pytest.mark.parametrize("model", ["mf", "bias"])
def test_every_als_kind_is_served_like_inference(runs, model, small_dataset):
    """What a run's kind answers, the API answers with the same list; what it refuses is one 400 sentence."""
    from mfrec import load_experiment
    from mfrec.errors import ModelError
    from mfrec.inference.api import run_request

    exp = load_experiment(runs[model])
    names, ids = titles(small_dataset)
    uid = int(small_dataset.user_ids.ids[0])
    with client_for(exp) as c:
        r = c.post(f"{API}/recommendations", json={"ratings": [{"movie": ids[0], "rating": 5}]})
        same_list(r.json()["items"], run_request(exp.recommender, rate={str(ids[0]): 5}).table)
        same_list(c.get(f"{API}/users/{uid}/recommendations").json()["items"],
                  run_request(exp.recommender, user=uid).table)
        r = c.get(f"{API}/movies/similar", params={"movie": ids[0]})
        try:
            want = run_request(exp.recommender, similar=str(ids[0]))
        except ModelError as e:
            assert_error(r, 400)
            assert r.json()["error"] == str(e)
        else:
            same_list(r.json()["items"], want.table)


def test_neural_kinds_are_served_like_inference(tmp_path):
    """sequential and attention runs (the torch extra): the same lists, and 400 for what they cannot answer."""
    pytest.importorskip("torch", reason='the neural runs need the torch extra: pip install -e ".[torch]"')
    from test_inference_neural import tiny_dataset, train_runs

    from mfrec import load_experiment
    from mfrec.errors import ModelError
    from mfrec.inference.api import run_request

    ds = tiny_dataset(tmp_path / "Training_data")
    runs = train_runs(ds, tmp_path / "Experiments_", ["sequential", "attention"])
    mid = int(ds.movies.sort("movie")["movieId"][0])
    uids = [str(u) for u in ds.user_ids.ids[:2]]
    for model, path in runs.items():
        exp = load_experiment(path)
        with client_for(exp) as c:
            asks = {
                "like": (lambda: c.post(f"{API}/recommendations", json={"ratings": [{"movie": mid, "rating": 5}]}),
                         lambda: run_request(exp.recommender, rate={str(mid): 5})),
                "user": (lambda: c.get(f"{API}/users/{uids[0]}/recommendations"),
                         lambda: run_request(exp.recommender, user=uids[0])),
                "users": (lambda: c.get(f"{API}/groups/recommendations", params={"users": ",".join(uids)}),
                          lambda: run_request(exp.recommender, users=uids)),
                "similar": (lambda: c.get(f"{API}/movies/similar", params={"movie": mid}),
                            lambda: run_request(exp.recommender, similar=str(mid))),
            }
            answered = 0
            for mode, (ask, direct) in asks.items():
                r = ask()
                try:
                    want = direct()
                except ModelError as e:
                    assert_error(r, 400)
                    assert r.json()["error"] == str(e), (model, mode)
                else:
                    assert r.status_code == 200, (model, mode, r.text)
                    same_list(r.json()["items"], want.table)
                    answered += 1
            assert answered >= 1, model


# -- errors and caps ------------------------------------------------------------------------------
def test_unknown_titles_are_404_with_suggestions(client, small_dataset):
    names, ids = titles(small_dataset)
    r = client.post(f"{API}/recommendations", json={"ratings": [{"movie": "Qqqzzx Vvvyyw", "rating": 4}]})
    assert_error(r, 404, "no movie matches", "Qqqzzx")
    body = names[0][:-7]
    word = max(body.split(), key=len)
    typo = body.replace(word, word[:2] + word[3:])  # one letter dropped from its longest word
    body = assert_error(client.post(f"{API}/recommendations", json={"ratings": [{"movie": typo, "rating": 4}]}),
                        404, "closest titles")
    assert ids[0] in [m["movieId"] for m in body["suggestions"]]
    body = assert_error(client.get(f"{API}/movies/similar", params={"movie": typo}), 404, typo)
    assert ids[0] in [m["movieId"] for m in body["suggestions"]]


def test_ambiguous_title_is_409_with_suggestions(tmp_path, small_raw):
    """Two films with one title and different years: asking for the bare title is ambiguous."""
    import polars as pl

    from mfrec import load_experiment
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.raw import RawData
    from mfrec.data.splits import SplitSpec

    movies = small_raw.movies.with_columns(
        pl.when(pl.col("movieId").is_in([1, 2])).then(pl.format("Twin Film ({})", pl.col("year")))
        .otherwise(pl.col("title")).alias("title"))
    raw = RawData(**{**{f: getattr(small_raw, f) for f in small_raw.__dataclass_fields__}, "movies": movies})
    out, _ = prepare(raw, SplitSpec("random", 0.2, 0.1, seed=3), name="twins", root=tmp_path / "Training_data")
    exp = load_experiment(make_run(tmp_path / "Experiments_", load(out), "mf"))
    with client_for(exp) as c:
        r = c.post(f"{API}/recommendations", json={"ratings": [{"movie": "twin film", "rating": 4}]})
        body = assert_error(r, 409, "twin film", "matches 2 movies")
        assert {m["movieId"] for m in body["suggestions"]} == {1, 2}
        assert c.post(f"{API}/recommendations", json={"ratings": [{"movie": "twin film 1994", "rating": 4}]}).status_code \
            in (200, 404)  # with a year it is one film (or none from that year)


def test_bad_bodies_are_one_sentence_4xx(client, small_dataset):
    _, ids = titles(small_dataset)
    post = lambda text, **h: client.post(f"{API}/recommendations", content=text,  # noqa: E731
                                         headers={"content-type": "application/json", **h})
    assert_error(post('{"ratings": [{"movie": 1, "rating": 4}'), 400, "not valid JSON")
    assert_error(post("not json at all"), 400, "not valid JSON")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": "five"}]})), 422, "ratings.0.rating", "'five'")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0]}]})), 422, "ratings.0.rating", "required")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": 4}], "colour": "red"})), 422, "colour")
    assert_error(post(json.dumps({"rating": 4})), 422, "ratings", "required")
    assert_error(post(json.dumps([1, 2])), 422)
    body = assert_error(post(json.dumps({"ratings": [{"movie": 1.5, "rating": 4}]})), 422, "ratings.0.movie", "movieId", "title")
    assert "more problem" not in body["error"]  # one value that fits neither int nor str is one problem
    assert_error(post('{"ratings": [{"movie": 1, "rating": NaN}]}'), 422, "outside the rating scale")
    assert_error(post(json.dumps({"ratings": []})), 422, "at least one rating")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": 9}]})), 422, "outside the rating scale 1-5")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": 0.5}]})), 422, "outside the rating scale")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": 4}], "genres": ["Polka"]})), 422, "unknown genre")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": 4}], "years": "2000-1990"})), 422, "backwards")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": 4}], "min_ratings": -1})), 422, "min-ratings")
    assert_error(post(json.dumps({"ratings": [{"movie": ids[0], "rating": 4}], "dislikes": "some"})), 422, "dislikes")
    assert_error(post(json.dumps({"ratings": [{"movie": "", "rating": 4}]})), 404, "empty")


def test_caps(client, small_dataset):
    _, ids = titles(small_dataset, 30)
    many = [{"movie": i, "rating": 3} for i in ids[:21]]
    assert_error(client.post(f"{API}/recommendations", json={"ratings": many}), 413, "21 ratings", "cap of 20")
    assert client.post(f"{API}/recommendations", json={"ratings": many[:20]}).status_code == 200
    one = [{"movie": ids[0], "rating": 3}]
    assert_error(client.post(f"{API}/recommendations", json={"ratings": one, "top": 26}), 422, "top", "1 to 25")
    assert_error(client.post(f"{API}/recommendations", json={"ratings": one, "top": 0}), 422, "top")
    assert client.post(f"{API}/recommendations", json={"ratings": one, "top": 25}).status_code == 200
    assert_error(client.get(f"{API}/movies/popular", params={"top": 26}), 422, "top")
    assert_error(client.get(f"{API}/movies/similar", params={"movie": ids[0], "top": 1000}), 422, "top")
    uids = ",".join(str(u) for u in small_dataset.user_ids.ids[:4])
    assert_error(client.get(f"{API}/groups/recommendations", params={"users": uids}), 413, "4 users", "cap of 3")
    assert_error(client.get(f"{API}/users/1/recommendations", params={"top": 26}), 422, "top")


def test_body_size_limit(client):
    big = json.dumps({"ratings": [{"movie": "x" * 100, "rating": 3}] * 40})
    assert len(big) > 4096
    assert_error(client.post(f"{API}/recommendations", content=big, headers={"content-type": "application/json"}),
                 413, "more than this server's limit of 4096 bytes")

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 1000

    r = client.post(f"{API}/recommendations", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "limit of 4096 bytes")
    r = client.post(f"{API}/recommendations", content=b"{}", headers={"content-type": "application/json",
                                                                      "content-length": "lots"})
    assert r.status_code == 400


def test_query_and_route_errors(client, small_dataset):
    uid = int(small_dataset.user_ids.ids[0])
    assert_error(client.get(f"{API}/users/99999/recommendations"), 404, "not in dataset")
    assert_error(client.get(f"{API}/users/abc/recommendations"), 404, "not a number")
    assert_error(client.get(f"{API}/users/{uid}/recommendations", params={"top": "ten"}), 422, "top", "'ten'")
    assert_error(client.get(f"{API}/users/{uid}/recommendations", params={"exclude": "some"}), 422, "exclude")
    assert_error(client.get(f"{API}/users/{uid}/recommendations", params={"years": "nineties"}), 422, "year range")
    assert_error(client.get(f"{API}/groups/recommendations", params={"users": str(uid)}), 422, "at least two")
    assert_error(client.get(f"{API}/groups/recommendations", params={"users": f"{uid},{uid}"}), 422, "twice")
    assert_error(client.get(f"{API}/groups/recommendations", params={"users": f"{uid},99999"}), 404, "99999")
    assert_error(client.get(f"{API}/nowhere"), 404, "/api/v1/")
    assert_error(client.delete(f"{API}/health"), 405, "DELETE")
    assert_error(client.get("/static/../../pyproject.toml"), 404)
    assert_error(client.get("/static/nothing.js"), 404, "nothing.js")


def test_bias_run_refuses_similar(runs):
    from mfrec import load_experiment

    with client_for(load_experiment(runs["bias"])) as c:
        assert "similar" not in c.get(f"{API}/model").json()["supports"]
        assert_error(c.get(f"{API}/movies/similar", params={"movie": 1}), 400, "no movie factors")


def test_requests_touch_no_files(tmp_path, monkeypatch, runs):
    """Answering never writes: the working folder stays empty and the run folder unchanged."""
    from mfrec import load_experiment

    monkeypatch.chdir(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in runs["mf"].rglob("*")}
    with client_for(load_experiment(runs["mf"])) as c:
        c.post(f"{API}/recommendations", json={"ratings": [{"movie": 1, "rating": 5}], "explain": True})
        c.get(f"{API}/users/1/recommendations")
        c.get(f"{API}/movies/similar", params={"movie": "../../etc/passwd"})
    assert list(tmp_path.iterdir()) == []
    assert {p: p.stat().st_mtime_ns for p in runs["mf"].rglob("*")} == before


# -- the page and the docs --------------------------------------------------------------------------
def test_page_static_files_and_docs(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "/static/app.js" in r.text and "/static/app.css" in r.text and "http" not in r.text.split("<body>")[0]
    for name, kind in (("app.js", "javascript"), ("app.css", "css")):
        s = client.get(f"/static/{name}")
        assert s.status_code == 200 and kind in s.headers["content-type"] and "/api/v1" in s.text or name == "app.css"
    spec = client.get(f"{API}/openapi.json").json()
    paths = set(spec["paths"])
    assert paths == {f"{API}/health", f"{API}/model", f"{API}/movies/search", f"{API}/movies/popular",
                     f"{API}/movies/similar", f"{API}/recommendations", f"{API}/users/{{user_id}}/recommendations",
                     f"{API}/groups/recommendations"}
    docs = client.get(f"{API}/docs")
    assert docs.status_code == 200 and all(p.replace("{", "{") in docs.text for p in paths)
    assert "MadeUpUserRequest" in docs.text and "cdn" not in docs.text.lower()


# -- the command ----------------------------------------------------------------------------------
def test_serve_command_without_the_extra_says_how_to_install(monkeypatch, runs):
    import importlib.util

    from click.testing import CliRunner

    from mfrec.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    r = CliRunner().invoke(main, ["serve", "--experiment", str(runs["mf"])])
    assert r.exit_code == 2
    assert 'pip install -e ".[serve]"' in r.output and "uvicorn" in r.output


def test_serve_command_refuses_a_bad_run_before_binding(tmp_path):
    from click.testing import CliRunner

    from mfrec.cli import main

    r = CliRunner().invoke(main, ["serve", "--experiment", "no-such-run", "--runs-root", str(tmp_path)])
    assert r.exit_code == 2 and "no experiment 'no-such-run'" in r.output
    r = CliRunner().invoke(main, ["serve", "--runs-root", str(tmp_path)])
    assert r.exit_code == 2 and "no successful run" in r.output


def test_serve_command_with_processes_hands_the_dispatcher_the_settings(monkeypatch, runs, small_dataset):
    """--processes N: one dispatcher and N server processes; each builds the app from the settings in the
    environment (run folder, caps, ranking run) and answers as the one-process app does."""
    from click.testing import CliRunner

    from mfrec.cli import main
    from mfrec.serve.app import SETTINGS_ENV, app_from_environment
    from mfrec.serve.balance import Dispatcher

    seen = {}

    def run(self):
        seen.update(n=self.n, settings=self.settings)
        return 0

    monkeypatch.setattr(Dispatcher, "run", run)
    r = CliRunner().invoke(main, ["serve", "-e", str(runs["mf"]), "--processes", "3", "--max-top", "7", "--port", "0",
                                  "--rank-by", "none"])
    assert r.exit_code == 0, r.output
    assert seen["n"] == 3 and "in each of 3 processes" in r.output
    settings = seen["settings"]
    assert settings["run"] == str(runs["mf"].resolve()) and settings["caps"]["max_top"] == 7
    assert settings["rank_by"] == "none"
    monkeypatch.setenv(SETTINGS_ENV, json.dumps(settings))
    with TestClient(app_from_environment()) as c:
        assert c.get(f"{API}/model").json()["caps"]["max_top"] == 7
        body = {"ratings": [{"movie": int(small_dataset.movie_ids.ids[0]), "rating": 5}], "top": 7}
        assert len(c.post(f"{API}/recommendations", json=body).json()["items"]) == 7


def test_the_dispatcher_gives_each_connection_to_the_process_with_the_fewest():
    from mfrec.serve.balance import CLOSED, READY, Dispatcher

    d = Dispatcher("127.0.0.1", 0, 3, {})
    assert [d.pick() for _ in range(3)] == [0, 1, 2]  # all equal: in turn
    d.open = [2, 1, 1]
    assert d.pick() == 1 and d.pick() == 2  # fewest first, ties in turn
    d.open = [0, 5, 5]
    assert [d.pick() for _ in range(2)] == [0, 0]

    import socket

    a, b = socket.socketpair()
    d.channels = [a, a, a]
    d.open = [3, 0, 0]
    b.sendall(READY + CLOSED + CLOSED)
    assert d._read(0) and d.ready[0] and d.open[0] == 1  # a closed connection is counted off
    b.close()
    assert not d._read(0)  # the process went away
    a.close()


def test_keep_alive_connections_spread_evenly_over_the_processes(runs, tmp_path):
    """A real server with 2 processes on 127.0.0.1: 4 keep-alive connections opened at once land 2 and 2
    (uvicorn's shared listening socket gave 8 such clients 6/2 or 7/1 in half the runs)."""
    import http.client
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-m", "mfrec", "serve", "-e", str(runs["mf"]), "--port", str(port),
                             "--processes", "2", "--rank-by", "none", "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if probe.recv(12).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        time.sleep(0.5)  # the probe's connection is closed and counted off
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(4)]
        answered = []
        for _ in range(3):  # each connection stays with its process
            for c in conns:
                c.request("GET", f"{API}/health")
                r = c.getresponse()
                assert r.status == 200
                answered.append(json.loads(r.read())["process"])
        by_connection = [set(answered[i::4]) for i in range(4)]
        assert all(len(p) == 1 for p in by_connection)
        pids = [p.pop() for p in by_connection]
        assert sorted(pids.count(p) for p in set(pids)) == [2, 2]
        for c in conns:
            c.close()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0 and "Traceback" not in out, out


def test_default_concurrency_is_one_process_per_core_and_the_rest_as_threads():
    """Without --processes/--workers: a process per core (at most 4), each with the cores left to it as
    scoring threads, so two threads of one process do not queue on its GIL when processes fill the cores."""
    from mfrec.cli.serve import default_concurrency

    assert default_concurrency(None, None, cores=2) == (2, 1)
    assert default_concurrency(None, None, cores=1) == (1, 1)
    assert default_concurrency(None, None, cores=16) == (4, 4)
    assert default_concurrency(1, None, cores=2) == (1, 2)  # one process keeps a thread per core
    assert default_concurrency(None, 3, cores=2) == (2, 3)  # what is given is kept
    assert default_concurrency(3, 1, cores=2) == (3, 1)


def test_every_connection_gets_tcp_nodelay():
    """Without TCP_NODELAY a two-part response waits for the client's delayed ACK (~40 ms a request)."""
    import socket

    import uvicorn
    from uvicorn.server import ServerState

    from mfrec.serve.tcp import NoDelayProtocol

    class Transport:  # what the protocol asks of an asyncio transport when a connection is made
        def __init__(self, sock):
            self.sock = sock

        def get_extra_info(self, name, default=None):
            return {"socket": self.sock, "peername": self.sock.getpeername(),
                    "sockname": self.sock.getsockname()}.get(name, default)

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server_side, _ = listener.accept()
    try:
        assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        config = uvicorn.Config(lambda scope, receive, send: None)
        config.load()
        NoDelayProtocol(config=config, server_state=ServerState(), app_state={}).connection_made(Transport(server_side))
        assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for s in (client, server_side, listener):
            s.close()
