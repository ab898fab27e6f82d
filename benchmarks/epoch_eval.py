"""What per-epoch evaluation costs: the old fixed train + validation + test RMSE every epoch against the
default evaluation callback (validation only; training RMSE only without a validation split).
Writes ``benchmarks/results/epoch_eval.json``.

    flock /tmp/mfrec-bench.lock .venv/bin/python benchmarks/epoch_eval.py --data ml-100k-rv synth-1m-rv \
        --data-root /tmp/eval-data --rounds 3

For each dataset, in one process, round robin over ``--rounds``: the same fit (default config of
``--model``, ``--epochs`` epochs, no early stopping) once with each evaluation; per epoch the fit's
own training seconds and its evaluation seconds (``eval_seconds`` / epochs). Medians over rounds.
Both fits train bit-identical models (asserted), so the difference is the evaluation alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

# threadpoolctl, installed here with the implicit peer (never with mfrec), lets mfrec count OpenBLAS's
# threads and warn that BLAS x Numba threads oversubscribe the cores; the BLAS calls of these runs
# come between the Numba-parallel half-steps, not inside them, so the warning is noise here
warnings.filterwarnings("ignore", message=r".* BLAS threads x .* Numba threads oversubscribe")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def one(ds, config, evaluation) -> dict:
    from mfrec.models.als import fit

    t0 = time.perf_counter()
    model = fit(ds, config, evaluate=evaluation)
    wall = time.perf_counter() - t0
    n = model.config["epochs_run"]
    return {"model": model, "train_s_per_epoch": statistics.median(r.seconds for r in model.history),
            "eval_s_per_epoch": model.config["eval_seconds"] / n, "wall_s": wall}


def measure(name: str, data_root: str, model: str, epochs: int, rounds: int) -> dict:
    import numpy as np

    from mfrec.data import load
    from mfrec.models.config import ALSConfig
    from mfrec.models.epoch_eval import RatingEvaluation

    ds = load(name, data_root=data_root)
    config = ALSConfig.for_model(model, epochs=epochs, patience=0)
    old = RatingEvaluation(ds, ("train", "val", "test"))  # what every fit measured before the callback
    new = RatingEvaluation.for_run(ds, config)
    one(ds, config.replace(epochs=1), new)  # compile / load the kernels outside the timing
    rows = {"old": [], "new": []}
    for _ in range(rounds):
        for label, evaluation in (("old", old), ("new", new)):
            rows[label].append(one(ds, config, evaluation))
    a, b = rows["old"][0]["model"], rows["new"][0]["model"]
    for key in ("user_factors", "movie_factors", "genre_factors", "user_bias", "movie_bias"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key  # the same training either way

    def med(label, key):
        return statistics.median(r[key] for r in rows[label])

    train_s = statistics.median([r["train_s_per_epoch"] for r in rows["old"] + rows["new"]])
    old_eval, new_eval = med("old", "eval_s_per_epoch"), med("new", "eval_s_per_epoch")
    return {
        "dataset": name, "model": model, "epochs": epochs, "rounds": rounds,
        "n_train": len(ds.train), "n_val": len(ds.val) if ds.val is not None else 0,
        "n_test": len(ds.test) if ds.test is not None else 0,
        "old_evaluation": list(old.splits), "new_evaluation": list(new.splits),
        "train_seconds_per_epoch": train_s,
        "old_eval_seconds_per_epoch": old_eval, "new_eval_seconds_per_epoch": new_eval,
        "saved_seconds_per_epoch": old_eval - new_eval,
        "saved_share_of_old_epoch": (old_eval - new_eval) / (train_s + old_eval),
        "old_eval_share_of_epoch_training": old_eval / train_s,
        "old_wall_seconds": med("old", "wall_s"), "new_wall_seconds": med("new", "wall_s"),
        "wall_ratio_old_over_new": med("old", "wall_s") / med("new", "wall_s"),
        "per_round": {label: [{k: v for k, v in r.items() if k != "model"} for r in rs] for label, rs in rows.items()},
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--data-root", default="Training_data")
    p.add_argument("--model", default="mf-genre")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "epoch_eval.json"))
    args = p.parse_args(argv)
    import numba

    out = {"note": "old = train+val+test RMSE every epoch; new = the default evaluation callback. Medians over "
                   "rounds run round robin in one process.", "loadavg_start": loadavg(),
           "numba_threads": numba.get_num_threads(), "results": []}
    for name in args.data:
        r = measure(name, args.data_root, args.model, args.epochs, args.rounds)
        out["results"].append(r)
        print(f"{name}: training {r['train_seconds_per_epoch']:.3f} s/epoch; evaluation {r['old_eval_seconds_per_epoch']:.4f} "
              f"-> {r['new_eval_seconds_per_epoch']:.4f} s/epoch ({'+'.join(r['old_evaluation'])} -> "
              f"{'+'.join(r['new_evaluation']) or 'nothing'}); saves {r['saved_seconds_per_epoch']:.4f} s/epoch = "
              f"{r['saved_share_of_old_epoch']:.1%} of the old epoch", flush=True)
    out["loadavg_end"] = loadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
