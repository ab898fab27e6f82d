"""Neural baselines on tiny synthetic data: loss falls, save/load round-trips, shapes and masks.

Needs the optional torch extra; without torch only the install-hint tests run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mfrec.errors import MfrecError


def test_core_never_imports_torch():
    code = ("import sys, mfrec, mfrec.data, mfrec.neural, mfrec.evaluation.ranking, mfrec.evaluation.protocols, "
            "mfrec.cli.evaluate, mfrec.data.imdb; from mfrec.neural import MODELS, extra_columns; "
            "extra_columns('neumf'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_torch_names_the_install_command(monkeypatch):
    import mfrec.neural as neural

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(neural.TorchMissingError, match=r'pip install -e "\.\[torch\]"'):
        neural.resolve(None, "neumf", {})
    with pytest.raises(ImportError, match="torch"):
        neural.load_model("anything")


def test_unknown_model_is_a_clear_error():
    from mfrec.neural import extra_columns, resolve

    with pytest.raises(MfrecError, match="unknown neural model 'nope'"):
        resolve(None, "nope", {})
    with pytest.raises(MfrecError, match="choose one of"):
        extra_columns("nope")


from mfrec.training import train_run  # noqa: E402

torch = pytest.importorskip("torch", reason='the neural baselines need the torch extra: pip install -e ".[torch]"')
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """60 users x 50 movies, 1,400 ratings, user-last split (3 test + 3 val per user)."""
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.synthetic import SyntheticSpec, generate

    raw = generate(SyntheticSpec(n_users=60, n_movies=50, n_ratings=1400, seed=11))
    root = tmp_path_factory.mktemp("td")
    out, _ = prepare(raw, SplitSpec("user-last", holdout=3, val_fraction=0.1, seed=1), name="tiny", root=root)
    return load(out)


def _metrics(run):
    import polars as pl

    return pl.read_csv(run.path / "metrics.csv", infer_schema_length=0)


def _floats(col):
    return [float(v) for v in col if v not in (None, "")]


def _check_folder(run, summary, model):
    for f in ("config.json", "metrics.csv", "train.log", "summary.json", "weights.pt", "model.json"):
        assert (run.path / f).is_file(), f
    assert not (run.path / "model.npz").exists()  # ALS's file: load_experiment must take the neural path
    assert list((run.path / "checkpoints").glob("epoch_*.pt"))
    assert list((run.path / "plots").glob("*.png"))
    on_disk = json.loads((run.path / "summary.json").read_text())
    assert on_disk["status"] == "ok" and on_disk["model"] == model and summary["model"] == model
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["model"] == model and cfg["dataset"] == "tiny" and "seed" in cfg
    header = (run.path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["epoch", "train_rmse", "val_rmse", "test_rmse", "seconds"]


@pytest.mark.parametrize("model", ["neumf", "genre-embedding"])
def test_rating_models_learn_save_and_reload(tiny, tmp_path, model):
    from mfrec.evaluation.protocols import rating_protocol
    from mfrec import load_experiment

    opts = {"epochs": 6, "factors": 8, "lr": 0.02, "batch_size": 128, "seed": 3, "progress": False, "genre_epochs": 5}
    run, summary = train_run(tiny, model, opts, runs_root=tmp_path / "Experiments_")
    _check_folder(run, summary, model)
    m = _metrics(run)
    stage2 = m.filter(m["epoch"].cast(int) > 0)
    losses = _floats(stage2["train_loss"])
    assert losses[-1] < losses[0]
    assert len(list((run.path / "checkpoints").glob("*.pt"))) == 6
    # round trip: the reloaded model reproduces the recorded test RMSE, through load_experiment too
    loaded = load_experiment(run.path).model
    assert rating_protocol(loaded, tiny)["rmse"] == pytest.approx(summary["test_rmse"], rel=1e-5)
    import mfrec  # the documented loader of a factors.npz, from the file or from its run folder

    for where in (run.path / "factors.npz", run.path):
        np.testing.assert_array_equal(mfrec.load_model(where).movie_factors, loaded.movie_factors)
    scores = loaded.score_users(np.array([0, 5]))
    assert scores.shape == (2, tiny.n_movies)
    np.testing.assert_allclose(np.clip(scores[1, [3, 7]], *tiny.rating_scale), loaded.predict([5, 5], [3, 7]), rtol=1e-5)
    assert loaded.movie_factors.shape == (tiny.n_movies, 8)
    with np.load(run.path / "factors.npz", allow_pickle=False) as z:  # ALS key names, same prediction
        p = z["mu"] + z["user_bias"][5] + z["movie_bias"][3] + z["user_factors"][5] @ z["movie_factors"][3]
        keys = set(z.files)
    assert np.clip(p, *tiny.rating_scale) == pytest.approx(loaded.predict([5], [3])[0], rel=1e-4)
    assert keys >= {"mu", "user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors",
                    "genre_indptr", "genre_indices", "user_ids", "movie_ids", "config_json"}
    assert (run.path / "plots" / "movie_map.png").is_file()
    if model == "genre-embedding":
        first, last = summary["genre_bce_first"], summary["genre_bce_last"]
        assert last < first
        assert len(_floats(m.filter(m["stage"] == "1")["train_loss"])) == 5


def test_genre_negatives_are_never_positives(tiny):
    from mfrec.neural.genre_embedding import genre_pairs, sample_negatives

    movies, genres, has = genre_pairs(tiny)
    neg = sample_negatives(movies, has, 3, np.random.default_rng(0))
    assert neg.shape[1] > 0 and not has[neg[0], neg[1]].any()
    assert has[movies, genres].all()


def test_sequential_learns_and_reloads(tiny, tmp_path):
    from mfrec.evaluation.protocols import ranking_protocol
    from mfrec.neural import load_model

    run, summary = train_run(tiny, "sequential", {"epochs": 5, "factors": 16, "lr": 0.02, "batch_size": 256, "seed": 1,
                                                "progress": False, "min_length": 3}, runs_root=tmp_path / "Experiments_")
    _check_folder(run, summary, "sequential")
    m = _metrics(run)
    losses = _floats(m["train_loss"])
    assert losses[-1] < losses[0]
    assert len(_floats(m["val_hit@10"])) == 5
    loaded = load_model(run.path)
    assert loaded.kind == "next-movie" and not hasattr(loaded, "predict")
    again = ranking_protocol(loaded, tiny)
    assert again["hit@10"] == pytest.approx(summary["hit@10"]) and again["ndcg@10"] == pytest.approx(summary["ndcg@10"])


def test_sequential_prefix_means_and_masks():
    from mfrec.neural.sequential import MeanSequence, example_batches, flag_mask, pad, train_mask

    mod = MeanSequence(n_movies=6, factors=4, dropout=0.0)
    seqs = [np.array([0, 1, 2, 3, 4]), np.array([5, 2])]
    padded, lengths = pad(seqs, 6)
    assert padded.tolist() == [[0, 1, 2, 3, 4], [5, 2, 6, 6, 6]] and lengths.tolist() == [5, 2]
    means = mod.prefix_means(torch.as_tensor(padded))
    e = mod.emb.weight.detach()
    torch.testing.assert_close(means[0, 2], e[[0, 1, 2]].mean(0))
    torch.testing.assert_close(means[1, 1], e[[5, 2]].mean(0))
    assert torch.all(e[6] == 0)  # padding embedding stays zero
    # targets at index t >= min_length (3) and inside the sequence only
    mask = train_mask(3)(padded, lengths)
    assert mask.tolist() == [[False, False, True, True], [False, False, False, False]]
    fm = flag_mask([np.array([0, 0, 0, 1, 1], bool), np.array([0, 1], bool)])(padded, lengths)
    assert fm.tolist() == [[False, False, True, True], [True, False, False, False]]
    # whole-sequence scores = logits of the full mean
    full = mod(torch.as_tensor(padded), torch.as_tensor(lengths))
    assert full.shape == (2, 6)
    torch.testing.assert_close(full[1], mod.logits(e[[5, 2]].mean(0)))
    groups = example_batches(np.array([0, 5, 1, 3]), 4)
    assert sorted(np.concatenate(groups).tolist()) == [1, 2, 3] and 0 not in np.concatenate(groups)


def test_attention_learns_reloads_and_is_symmetric(tiny, tmp_path):
    from mfrec.evaluation.protocols import rating_protocol
    from mfrec.neural import load_model

    run, summary = train_run(tiny, "attention", {"epochs": 4, "factors": 8, "heads": 2, "hidden": 16, "lr": 0.01,
                                               "batch_size": 128, "seed": 2, "progress": False}, runs_root=tmp_path / "Experiments_")
    _check_folder(run, summary, "attention")
    losses = _floats(_metrics(run)["train_loss"])
    assert losses[-1] < losses[0]
    assert summary["user_features"] == ["gender", "age", "occupation"]
    loaded = load_model(run.path)
    assert rating_protocol(loaded, tiny)["rmse"] == pytest.approx(summary["test_rmse"], rel=1e-5)
    ab = loaded.predict_pairs([1, 2], [2, 1], [4, 4])
    assert ab[0] == pytest.approx(ab[1], rel=1e-5)  # the pair head is symmetric in the two users
    s = loaded.score_pairs([1], [2])
    assert s.shape == (1, tiny.n_movies)
    top = loaded.recommend_pair(1, 2, k=5)
    seen = set(tiny.train.movie[tiny.train.user == 1].tolist()) | set(tiny.train.movie[tiny.train.user == 2].tolist())
    assert len(top) == min(5, tiny.n_movies - len(seen)) and not seen & {m for m, _ in top}



def _flat_pair_model(tiny, mean, movie_bias, histories=True, meta=None):
    """An attention model whose score is mean + movie_bias[m] (the pair head's layers output 0)."""
    from mfrec.neural.attention import Histories, PairAttention, PairModel

    module = PairAttention(tiny.n_users, tiny.n_movies, 1, [], factors=4, heads=1, hidden=8, mean=mean)
    with torch.no_grad():
        module.head[-1].weight.zero_()
        module.head[-1].bias.zero_()
        module.movie_bias.weight[:, 0] = torch.as_tensor(movie_bias, dtype=torch.float32)
    hist = Histories(tiny, "cpu", 4, 2) if histories else None
    return PairModel(module, hist, {"rating_scale": (1.0, 5.0), **(meta or {})})


def test_recommend_pair_ranks_past_the_ceiling_by_the_unclipped_score(tiny):
    # every movie scores above 5, the higher the index the higher the score
    model = _flat_pair_model(tiny, 10.0, 0.01 * np.arange(tiny.n_movies + 1))
    seen = set(tiny.train.movie[np.isin(tiny.train.user, [1, 2])].tolist())
    unseen = [m for m in range(tiny.n_movies) if m not in seen]
    top = model.recommend_pair(1, 2, k=5)
    assert [m for m, _ in top] == sorted(unseen, reverse=True)[:5]  # not the lowest indices, as clipped ties were
    assert [r for _, r in top] == [5.0] * 5  # the ratings shown are clipped to the scale


def test_attention_on_a_dataset_of_another_size_is_a_model_error(tiny):
    from mfrec.errors import ModelError

    meta = {"data_path": str(tiny.path), "arch": {"n_users": tiny.n_users, "n_movies": tiny.n_movies + 1}}
    model = _flat_pair_model(tiny, 3.5, np.zeros(tiny.n_movies + 1), histories=False, meta=meta)
    with pytest.raises(ModelError, match=f"has {tiny.n_users} users x {tiny.n_movies} movies but the model was "
                                         f"trained on {tiny.n_users} x {tiny.n_movies + 1}"):
        model.recommend_pair(1, 2)

def test_attention_windows_never_contain_the_target(tiny):
    from mfrec.neural.attention import Histories

    h = Histories(tiny, "cpu", 4, 2)
    u = torch.tensor([0, 0, 0, 0, 0])
    p = torch.tensor([0, 2, 4, 5, 9])
    movies, tokens = h.windows(u, p)
    assert movies.shape == (5, 4)
    start = int(h.indptr[0])
    seq = h.movie[start:start + 12]
    pad = tiny.n_movies
    assert movies[0].tolist() == [pad] * 4 and tokens[0].tolist() == [0] * 4  # nothing before position 0
    assert movies[1].tolist() == [*seq[:2].tolist(), pad, pad]  # p < 4: positions >= p masked
    assert movies[2].tolist() == seq[0:4].tolist()  # p = 4: window 0..3
    assert movies[3].tolist() == seq[0:4].tolist()  # p = 5: grid start 0 (step 2)
    assert movies[4].tolist() == seq[4:8].tolist()  # p = 9: grid start 4
    assert (tokens[2] >= 2).all()  # whole-star ratings 1..5 -> tokens 2..10


def test_device_cuda_without_gpu_is_a_clear_error_before_any_run_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU, wherever this runs
    with pytest.raises(MfrecError, match="--device cuda"):
        train_run(tiny, "neumf", {"device": "cuda", "epochs": 1, "progress": False}, runs_root=tmp_path)
    with pytest.raises(MfrecError, match="--device must be cpu or cuda"):
        train_run(tiny, "neumf", {"device": "tpu", "epochs": 1, "progress": False}, runs_root=tmp_path)
    assert not list(tmp_path.iterdir())  # no "failed" run for mfrec compare to list


def test_main_py_trains_a_neural_model(tiny, tmp_path):
    from click.testing import CliRunner

    from mfrec.cli.train import train

    res = CliRunner().invoke(train, ["--data", str(tiny.path), "--model", "neumf", "--epochs", "2", "--factors", "4",
                                     "--runs-root", str(tmp_path / "E"), "--name", "nm", "--quiet"])
    assert res.exit_code == 0, res.output
    (folder,) = list((tmp_path / "E").iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["epochs_run"] == 2 and summary["config"]["factors"] == 4


def test_attention_uses_imdb_runtime_and_directors(tiny, tmp_path):
    """With an imdb.parquet (as Data_processing.py --imdb writes it) the model gains runtime/director features."""
    import shutil

    import polars as pl

    from mfrec.data import load
    from mfrec.neural import load_model
    from mfrec.neural.attention import movie_features

    folder = tmp_path / "tiny-imdb"
    shutil.copytree(tiny.path, folder)
    n = tiny.n_movies
    pl.DataFrame({
        "movie": np.arange(n, dtype=np.int32),
        "runtime": [None if i % 5 == 0 else 80 + i for i in range(n)],
        "directors": [["Ann"] if i % 2 else (["Bob", "Cy"] if i % 3 else []) for i in range(n)],
    }, schema={"movie": pl.Int32, "runtime": pl.Int32, "directors": pl.List(pl.String)}).write_parquet(folder / "imdb.parquet")
    ds = load(folder)
    f = movie_features(ds)
    assert f["imdb"] and f["n_directors"] == 3  # Ann, Bob + the unknown code 0
    assert f["runtime"][0].tolist() == [0.0, 0.0] and f["runtime"][1, 1] == 1.0  # movie 0: runtime unknown
    assert f["director"][1] != f["director"][2] and f["director"][0] == 0  # movie 0 has no director
    run, summary = train_run(ds, "attention", {"epochs": 2, "factors": 8, "heads": 2, "hidden": 16, "batch_size": 128,
                                             "progress": False}, runs_root=tmp_path / "Experiments_")
    assert summary["imdb_features"] is True
    loaded = load_model(run.path)
    assert loaded.module.imdb and loaded.predict([0], [1]).shape == (1,)


def test_best_epoch_keeps_the_best_weights_and_stops_after_patience():
    from mfrec.neural.common import BestEpoch

    layer = torch.nn.Linear(2, 1)
    best = BestEpoch(patience=2)  # lower is better (RMSE)
    for epoch, (score, w) in enumerate([(1.0, 1.0), (0.5, 2.0), (0.7, 3.0), (0.6, 4.0)], start=1):
        with torch.no_grad():
            layer.weight.fill_(w)
        best.keep(score, epoch, layer)
        if epoch == 3:
            assert not best.should_stop(epoch, True)  # one epoch without improvement
    assert best.epoch == 2 and best.score == 0.5
    assert best.should_stop(4, True)
    assert not best.should_stop(4, False)  # never without a validation score
    assert not BestEpoch(patience=0).should_stop(9, True) and not BestEpoch(patience=None).should_stop(9, True)
    best.restore(layer)
    assert torch.all(layer.weight == 2.0)

    ranking = BestEpoch(higher_is_better=True)  # NDCG
    ranking.keep(0.1, 1, layer)
    ranking.keep(0.3, 2, layer)
    ranking.keep(0.2, 3, layer)
    assert ranking.epoch == 2
