"""Every model on ml-100k in one table: RMSE/MAE on u1 (rating models), Hit@10/NDCG@10 under user-last (all).

Runs the command line exactly as a user would (Data_processing.py, Main.py, mfrec evaluate) into a
work folder, then writes ``benchmarks/results/neural_compare.json`` and prints a Markdown table.

    .venv/bin/python benchmarks/neural_compare.py --source /path/to/ml-100k [--work /tmp/mfrec-neural-compare]
    .venv/bin/python benchmarks/neural_compare.py --collect-only   # table from an earlier --work folder
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
RATING_MODELS = ("bias", "mf", "mf-genre", "neumf", "genre-embedding", "attention")
ALL_MODELS = RATING_MODELS + ("sequential",)


def sh(args: list[str], cwd: Path) -> float:
    """Run a command, echo it, return its wall seconds (raises on failure)."""
    print("$", " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    return time.perf_counter() - t0


def latest(root: Path, name: str) -> Path:
    runs = sorted(p for p in root.iterdir() if p.name.startswith(name + "-2"))
    if not runs:
        raise SystemExit(f"no run {name} under {root}")
    return runs[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="/work/shared/data/ml-100k", help="extracted ml-100k folder")
    ap.add_argument("--work", default="/tmp/mfrec-neural-compare", help="where Training_data/ and Experiments_/ go")
    ap.add_argument("--collect-only", action="store_true", help="only build the table from existing runs")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    exp = work / "Experiments_"
    walls: dict[str, float] = {}
    if not args.collect_only:
        dp, main_py = str(REPO / "Data_processing.py"), str(REPO / "Main.py")
        sh([PY, dp, "--dataset", "ml-100k", "--source", args.source, "--split", "u1", "--name", "ml-100k-u1", "--quiet"], work)
        sh([PY, dp, "--dataset", "ml-100k", "--source", args.source, "--split", "user-last", "--holdout", "5",
            "--val-fraction", "0.1", "--name", "ml-100k-last", "--quiet"], work)
        for m in RATING_MODELS:
            walls[f"u1-{m}"] = sh([PY, main_py, "--data", "ml-100k-u1", "--model", m, "--name", f"u1-{m}", "--quiet",
                                   *(["--device", args.device] if m not in RATING_MODELS[:3] else [])], work)
        for m in ALL_MODELS:
            walls[f"last-{m}"] = sh([PY, main_py, "--data", "ml-100k-last", "--model", m, "--name", f"last-{m}", "--quiet",
                                     *(["--device", args.device] if m not in RATING_MODELS[:3] else [])], work)
        mfrec = [PY, "-c", "from mfrec.cli import main; main()"]
        walls["last-popularity"] = sh(mfrec + ["evaluate", "--popularity", "--data", "ml-100k-last", "--name",
                                               "last-popularity", "--quiet"], work)
        for m in ALL_MODELS:
            sh(mfrec + ["evaluate", "--experiment", f"last-{m}", "--protocol", "ranking", "--quiet"], work)
    rows = []
    for m in ALL_MODELS + ("popularity",):
        row: dict = {"model": m}
        if m in RATING_MODELS:
            s = json.loads((latest(exp, f"u1-{m}") / "summary.json").read_text())
            row.update(u1_rmse=s.get("test_rmse"), u1_mae=s.get("test_mae"), u1_train_seconds=s.get("train_seconds"),
                       u1_peak_rss_mb=s.get("peak_rss_mb"), u1_epochs=s.get("epochs_run"))
        s = json.loads((latest(exp, f"last-{m}") / "summary.json").read_text())
        row.update({f"last_{k}": s.get(k) for k in ("hit@10", "ndcg@10", "recall@10", "coverage@10", "genre_consistency@10")})
        row.update(last_train_seconds=s.get("train_seconds"), last_peak_rss_mb=s.get("peak_rss_mb"))
        rows.append(row)
    out = {"dataset": "ml-100k", "source": args.source, "work": str(work), "walls": walls, "rows": rows,
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    res = REPO / "benchmarks" / "results" / "neural_compare.json"
    res.parent.mkdir(exist_ok=True)
    tmp = res.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(res)

    def f(v, d=4):
        return "–" if v is None else f"{v:.{d}f}"

    print("\n| model | u1 RMSE | u1 MAE | u1 train s | Hit@10 | NDCG@10 | Recall@10 | coverage | genre cons. | user-last train s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {f(r.get('u1_rmse'))} | {f(r.get('u1_mae'))} | {f(r.get('u1_train_seconds'), 1)} | "
              f"{f(r['last_hit@10'])} | {f(r['last_ndcg@10'])} | {f(r['last_recall@10'])} | {f(r['last_coverage@10'], 3)} | "
              f"{f(r['last_genre_consistency@10'], 3)} | {f(r.get('last_train_seconds'), 1)} |")
    print(f"\nwrote {res}")


if __name__ == "__main__":
    main()
