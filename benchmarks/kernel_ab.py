"""Seconds per ALS epoch of the half-step kernels of two commits, side by side in one process.

For a change to the kernels that must not lose speed (a refactor, a fold of duplicated code): the
package ``src/mfrec`` of each commit is extracted (``git archive``) into a temporary folder under
its own name (``mfrec_a``, ``mfrec_b``: the absolute ``mfrec.`` imports rewritten), both are
imported, and one epoch (user then movie half-step, ``mfrec.kernels.als.solve_rows`` or
``mfrec.kernels.ials.solve_implicit_rows``) runs with each in turn, the order swapped every round,
after one untimed warm-up epoch each (JIT compile or cache load, first touch). The figure is the
median of the per-round ratios b / a, so a change of the machine's load hits both alike. Each
commit's factors after the last round are hashed: ``bit_identical`` says whether the two gave the
same bits.

    .venv/bin/python benchmarks/kernel_ab.py --a b832f84 --b HEAD --data synth-1m --k 64 --rounds 7
    .venv/bin/python benchmarks/kernel_ab.py --a b832f84 --b HEAD --data synth-25m --k 64 --rounds 2 --kinds mf-cg ials-cg

Writes ``benchmarks/results/kernel_ab.json`` (one entry per commit pair, dataset and k).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

# threadpoolctl, installed here with the implicit peer (never with mfrec), lets mfrec count OpenBLAS's
# threads and warn that BLAS x Numba threads oversubscribe the cores; the BLAS calls of these runs
# come between the Numba-parallel half-steps, not inside them, so the warning is noise here
warnings.filterwarnings("ignore", message=r".* BLAS threads x .* Numba threads oversubscribe")

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("mf-cholesky", "mf-cg", "ials-cholesky", "ials-cg")
_IMPORT = re.compile(r"\b(from|import) mfrec(?=[.\s])")


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def extract(rev: str, name: str, into: Path) -> str:
    """``src/mfrec`` of commit ``rev`` as the package ``name`` under ``into``; returns the full commit id."""
    full = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    tar = subprocess.run(["git", "archive", full, "src/mfrec"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for member in t.getmembers():
            if not member.isfile():
                continue
            rel = Path(member.name).relative_to("src/mfrec")
            dest = into / name / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = t.extractfile(member).read()
            if dest.suffix == ".py":
                data = _IMPORT.sub(lambda m: f"{m.group(1)} {name}", data.decode()).encode()
            if not (dest.is_file() and dest.read_bytes() == data):  # unchanged: keep its mtime, Numba's cache key
                dest.write_bytes(data)
    return full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="the commit before (e.g. main)")
    ap.add_argument("--b", default="HEAD", help="the commit after [HEAD]")
    ap.add_argument("--data", required=True, help="a prepared dataset (name or path)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (one epoch of each commit per round)")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--cache", default=None,
                    help="folder for the extracted packages (kept, so Numba's cache survives to the next call) "
                         "[a temporary folder]")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "kernel_ab.json"))
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    import mfrec.data
    from mfrec.models.confidence import confidences

    tmp = None if args.cache else tempfile.TemporaryDirectory(prefix="kernel_ab-")
    where = Path(args.cache or tmp.name)
    commits = {"a": extract(args.a, "mfrec_a", where), "b": extract(args.b, "mfrec_b", where)}
    sys.path.insert(0, str(where))
    kernels = {v: (importlib.import_module(f"mfrec_{v}.kernels.als"), importlib.import_module(f"mfrec_{v}.kernels.ials"))
               for v in commits}

    ds = mfrec.data.load(args.data, data_root=args.data_root)
    u, m = ds.train_by_user, ds.train_by_movie
    mu = float(np.mean(ds.train.rating, dtype=np.float64))
    top = float(ds.rating_scale[1])
    uconf = confidences(u.values, top, alpha=1.0, power=1.0)
    mconf = confidences(m.values, top, alpha=1.0, power=1.0)
    k = args.k
    result = {"a": commits["a"], "b": commits["b"], "dataset": ds.name, "n_train": len(ds.train), "k": k,
              "rounds": args.rounds, "loadavg_before": loadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "kinds": {}}
    for kind in args.kinds:
        model, solver = kind.split("-")
        state = {}
        for v in commits:  # the same start for both
            rng = np.random.default_rng(0)
            state[v] = [(rng.standard_normal((ds.n_users, k)) * 0.1).astype(np.float32),
                        (rng.standard_normal((ds.n_movies, k)) * 0.1).astype(np.float32),
                        np.zeros(ds.n_users, np.float32), np.zeros(ds.n_movies, np.float32)]

        def epoch(v: str) -> float:
            als, ials = kernels[v]
            P, Q, bu, bi = state[v]
            t0 = time.perf_counter()
            if model == "mf":
                c = dict(reg=0.08, reg_bias=10.0, weighted=True, solver=solver, cg_steps=3)
                als.solve_rows(u.indptr, u.indices, u.values, Q, bi, mu, out_factors=P, out_bias=bu, what="user", **c)
                als.solve_rows(m.indptr, m.indices, m.values, P, bu, mu, out_factors=Q, out_bias=bi, what="movie", **c)
            else:
                c = dict(reg=0.01, alpha0=1.0, nu=0.0, solver=solver, cg_steps=3)
                ials.solve_implicit_rows(m.indptr, m.indices, mconf, P, gram=ials.gramian(P, 1.0), out_factors=Q,
                                         what="movie", **c)
                ials.solve_implicit_rows(u.indptr, u.indices, uconf, Q, gram=ials.gramian(Q, 1.0), out_factors=P,
                                         what="user", **c)
            return time.perf_counter() - t0

        epoch("a")
        epoch("b")  # warm-up, not timed
        seconds: dict[str, list[float]] = {"a": [], "b": []}
        ratios = []
        for r in range(args.rounds):
            got = {v: epoch(v) for v in (("a", "b") if r % 2 == 0 else ("b", "a"))}
            for v, s in got.items():
                seconds[v].append(s)
            ratios.append(got["b"] / got["a"])
        digest = {v: hashlib.sha256(b"".join(x.tobytes() for x in state[v])).hexdigest()[:16] for v in commits}
        result["kinds"][kind] = {
            "a_seconds": seconds["a"], "b_seconds": seconds["b"], "a_median_s": statistics.median(seconds["a"]),
            "b_median_s": statistics.median(seconds["b"]), "ratio_b_over_a_per_round": ratios,
            "median_ratio_b_over_a": statistics.median(ratios), "factor_hash": digest,
            "bit_identical": digest["a"] == digest["b"]}
        print(f"{ds.name} k={k} {kind:<14} a {statistics.median(seconds['a']):7.3f} s  b "
              f"{statistics.median(seconds['b']):7.3f} s  b/a {statistics.median(ratios):.3f}  "
              f"bit-identical {digest['a'] == digest['b']}  load {loadavg()}", flush=True)
    result["loadavg_after"] = loadavg()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    same = [x for x in results["runs"] if x["a"] == result["a"] and x["b"] == result["b"]
            and x["dataset"] == result["dataset"] and x["k"] == k]
    if same:  # the same pair, data and k: this run's kinds replace those kinds only
        for kind, row in result["kinds"].items():
            same[0]["kinds"][kind] = {**row, "rounds": args.rounds, "loadavg_before": result["loadavg_before"],
                                      "when": result["when"]}
    else:
        results["runs"].append(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
