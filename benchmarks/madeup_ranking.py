"""Made-up users on the ranking protocol: does calibration, or ranking dislikes down-only, hurt the lists?

    .venv/bin/python benchmarks/madeup_ranking.py --data Training_data/ml-100k-user-last --run RUN

Every user with test ratings on a prepared ``user-last`` split is treated as a made-up user: their
*training* ratings go through the path Inference.py's ``--like/--rate`` takes (``Recommender.fold_in``,
then ``Recommender.made_up_scores``), every movie they did not rate in train or val is a candidate,
and Hit@10 / NDCG@10 / Recall@10 are the protocol's (``mfrec.evaluation.ranking.evaluate_ranking``).
Variants, all from the one trained run:

- ``trained``: the user vectors training stored (the protocol's reference, not a made-up path);
- ``fold-in plain``: the ALS user half-step alone (the fold-in before calibration);
- ``fold-in calibrated``: with the run's population prior (the default fold-in now);
- ``calibrated, dislikes down-only``: ranked by the score less what ratings below the movie's
  average lift (``--dislikes down-only``);
- ``ranked by KIND run`` (one per ``--ranker RUN``): the list Inference.py shows with ``--rank-by RUN``,
  or with the default ``--rank-by auto`` when RUN is the newest ials (else ease) run on the dataset: the
  made-up user's training ratings go through that run's own fold-in (``score_made_up``), and the
  predicting run only supplies the shown ratings, which do not change the order.

    .venv/bin/python benchmarks/madeup_ranking.py --data D/ml-100k-user-last --run MF_RUN \
        --ranker IALS_RUN --ranker EASE_RUN

Each variant is measured with every candidate (the protocol) and with ``--min-ratings 10`` (what the
recommendations list by default). Also counted: how many lists are *led by a dislike* (the first
film's largest positive contribution comes from a rating below that movie's average).
Writes ``benchmarks/results/madeup_ranking.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "madeup_ranking.json"


def _progress(done: int, total: int, what: str) -> None:
    width = 30
    fill = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{what:<34} [{'#' * fill}{'.' * (width - fill)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _led_by_dislike(rec, ratings, first: int) -> bool:
    from mfrec.inference.foldin import explain_contributions

    rated = np.array([m for m, _ in ratings], np.int64)
    values = np.array([r for _, r in ratings], np.float64)
    c, _, _ = explain_contributions(rec.model, rated, values, np.array([first]))
    j = int(np.argmax(c[0]))
    return bool(c[0, j] > 0 and values[j] < rec.model.mu + float(rec.model.movie_bias[rated[j]]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a prepared user-last dataset folder")
    ap.add_argument("--run", required=True, help="a trained ALS run folder on that dataset")
    ap.add_argument("--ranker", action="append", default=[], metavar="RUN",
                    help="also rank each made-up user with this run's fold-in (--rank-by RUN); repeatable")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    import mfrec
    from mfrec.evaluation.protocols import history_and_targets, require_user_last
    from mfrec.evaluation.ranking import evaluate_ranking

    ds = mfrec.load_dataset(args.data)
    require_user_last(ds)
    exp = mfrec.load_experiment(args.run)
    rec = exp.recommender
    model = rec.model
    if not model.calibrated:
        raise SystemExit(f"run {args.run} has no population prior: train it again with this version of mfrec")
    history, targets = history_and_targets(ds)
    users = np.flatnonzero(np.diff(targets[0]) > 0)
    train = ds.train_by_user
    g = ds.movie_genres

    def row(u):
        a, b = int(train.indptr[u]), int(train.indptr[u + 1])
        return list(zip(np.asarray(train.indices[a:b]).tolist(), np.asarray(train.values[a:b], np.float64).tolist()))

    def plain(u):
        r = row(u)
        b, v = model.fold_in_user([m for m, _ in r], [x for _, x in r], prior=False)
        return model.score_movies(b, v)

    variants = {
        "trained": None,
        "fold-in plain": plain,
        "fold-in calibrated": lambda u: rec.made_up_scores(row(u), "score")[2],
        "calibrated, dislikes down-only": lambda u: rec.made_up_scores(row(u), "down-only")[2],
    }
    from mfrec.inference.rankers import ranker_for

    ranker_runs = {}
    for spec in args.ranker:
        rexp = mfrec.load_experiment(spec)
        if rexp.dataset_fingerprint != exp.dataset_fingerprint:
            raise SystemExit(f"--ranker {spec} was trained on another dataset version than --run {args.run}")
        ranker = ranker_for(rexp)
        if not np.array_equal(np.asarray(ranker.movie_ids), rec.movie_id_array):
            raise SystemExit(f"--ranker {spec} scores other movies than --run {args.run}")
        name = f"ranked by {rexp.config.get('model', '?')} run"
        variants[name] = lambda u, ranker=ranker: np.asarray(ranker.score_made_up(row(u)), np.float32)
        ranker_runs[name] = rexp.name
    results: dict = {}
    for name, one in variants.items():
        t0 = time.perf_counter()
        done = [0]

        def score(batch, one=one, name=name):
            if one is None:
                out = model.score_users(batch)
            else:
                out = np.stack([one(int(u)) for u in batch])
            done[0] += len(batch)
            _progress(done[0], len(users), name)
            return out

        scores = np.zeros((len(users), ds.n_movies), np.float32)  # scored once, ranked under both filters
        for a in range(0, len(users), 128):
            scores[a:a + 128] = score(users[a:a + 128])
        pos = {int(u): i for i, u in enumerate(users)}
        results[name] = {}
        for min_ratings in (0, 10):
            rare = rec.popularity < min_ratings

            def fn(batch, rare=rare):
                s = scores[[pos[int(u)] for u in batch]].copy()
                s[:, rare] = -np.inf
                return s

            res = evaluate_ranking(fn, ds.n_movies, users, history, targets, (np.asarray(g.indptr), np.asarray(g.indices)),
                                   len(ds.genres), k=args.k, batch_size=256).as_dict()
            results[name][f"min_ratings={min_ratings}"] = {key: res[key] for key in res if "@" in key or key == "users"}
        if one is not None and name not in ("fold-in plain", *ranker_runs):
            led = sum(_led_by_dislike(rec, row(int(u)), int(np.argmax(np.where(
                np.isin(np.arange(ds.n_movies), history[1][history[0][u]:history[0][u + 1]]), -np.inf, scores[i]))))
                for i, u in enumerate(users))
            results[name]["lists_led_by_a_dislike"] = int(led)
        results[name]["seconds"] = time.perf_counter() - t0
    out = {
        "benchmark": "madeup_ranking",
        "dataset": ds.name,
        "split": ds.manifest.split,
        "run": str(Path(args.run).name),
        "model": model.kind,
        "k_factors": model.k,
        "users": int(len(users)),
        "history_folded_in": "each user's training ratings (val and train movies excluded from the candidates)",
        "ranker_runs": ranker_runs,
        "results": results,
        "machine": platform.platform(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    for name, r in results.items():
        line = "  ".join(f"{f}: hit {r[f][f'hit@{args.k}']:.3f} ndcg {r[f][f'ndcg@{args.k}']:.4f}"
                         for f in ("min_ratings=0", "min_ratings=10"))
        led = f"  led by a dislike {r['lists_led_by_a_dislike']}" if "lists_led_by_a_dislike" in r else ""
        print(f"{name:<32} {line}{led}")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
