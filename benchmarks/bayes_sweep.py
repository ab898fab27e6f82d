"""Seconds per Gibbs sample, CPU use and peak RSS of ``--model bayes``: this tree against a baseline
git revision, in one process.

    python benchmarks/bayes_sweep.py --data-root /tmp/dask-data --data synth-10m --k 32 --samples 3 \
        --baseline b832f84 --rounds 2 [--out bayes_sweep]

The baseline's ``src/mfrec`` is taken from git (``git archive``) into a temporary folder as the
package ``mfrec_baseline`` (its imports renamed), so both samplers run in this one process, round
robin (``--rounds`` rounds of baseline then current, after one warm-up fit of each that loads or
compiles their Numba kernels). Per fit: wall seconds per sample (the fit's wall time / samples,
data preparation of the time biases included), the median sweep time, and the CPU seconds the
process used over the fit / its wall time (the cores in use; 2.0 = both cores of this machine).
The medians over the rounds are reported, with the median of the per-round ratios baseline /
current. Peak RSS: one more fit of each in its own child process (its VmHWM), unless ``--no-rss``.
Both fits use ``BayesConfig`` defaults (time biases and both implicit groups on) with ``--k``,
``--samples`` (1 burn-in) and ``stored_samples=0``; the same seed gives each the same chain.
Writes ``benchmarks/results/<out>.json`` with the load average before and after.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
BASELINE = "mfrec_baseline"


def _loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def baseline_package(rev: str, into: Path) -> None:
    """``src/mfrec`` at ``rev`` as the package ``mfrec_baseline`` under ``into`` (imports renamed)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src/mfrec"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    pkg = into / BASELINE
    (into / "src" / "mfrec").rename(pkg)
    pattern = re.compile(r"\bmfrec(?=\.[a-z_]|\s+import\b|$)", re.M)
    for path in pkg.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"^(\s*)import mfrec$", rf"\1import {BASELINE} as mfrec", text, flags=re.M)
        path.write_text(pattern.sub(BASELINE, text))


def package(which: str):
    return importlib.import_module(BASELINE if which == "baseline" else "mfrec")


def fit_once(which: str, data_root: str, data: str, k: int, samples: int) -> dict:
    pkg = package(which)
    bayes = importlib.import_module(f"{pkg.__name__}.models.bayes")
    ds = pkg.data.load(data, data_root=data_root)
    cfg = bayes.BayesConfig(factors=k, samples=samples, burn_in=1, stored_samples=0)
    t0, c0 = time.perf_counter(), time.process_time()
    model = bayes.fit(ds, cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sweeps = [r.seconds for r in model.history]
    return {"seconds": wall, "seconds_per_sample": wall / samples, "median_sweep_seconds": statistics.median(sweeps),
            "cores_used": cpu / wall, "posterior_test_rmse": model.config.get("posterior_test_rmse"),
            "final_train_rmse": model.history[-1].train_rmse, "threads": model.config.get("numba_threads")}


def child(spec: dict) -> dict:
    sys.path.insert(0, spec["baseline_root"])
    out = fit_once(spec["which"], spec["data_root"], spec["data"], spec["k"], spec["samples"])
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    out["peak_rss_mb"] = int(status["VmHWM"].split()[0]) / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--baseline", default="main", help="git revision to compare against")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--out", default="bayes_sweep")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.baseline], capture_output=True,
                         text=True, check=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bayes-baseline-") as tmp:
        baseline_package(rev, Path(tmp))
        sys.path.insert(0, tmp)
        versions = ("baseline", "current")
        print(f"warm-up fits (baseline {rev}, current {head}), load {_loadavg()[0]:.1f} ...", flush=True)
        for which in versions:
            fit_once(which, args.data_root, args.data, args.k, 2)
        per: dict[str, list[dict]] = {v: [] for v in versions}
        load_before = _loadavg()
        for r in range(args.rounds):
            for which in versions:
                res = fit_once(which, args.data_root, args.data, args.k, args.samples)
                per[which].append(res)
                print(f"  round {r + 1}/{args.rounds} {which:8s} {res['seconds_per_sample']:.2f} s/sample, "
                      f"sweep {res['median_sweep_seconds']:.2f} s, {res['cores_used']:.2f} cores", flush=True)
        load_after = _loadavg()
        rows = {}
        for which in versions:
            runs = per[which]
            rows[which] = {"revision": rev if which == "baseline" else head, **runs[-1],
                           **{key: statistics.median(x[key] for x in runs)
                              for key in ("seconds_per_sample", "median_sweep_seconds", "cores_used", "seconds")},
                           "rounds": runs}
            if not args.no_rss:
                spec = {"which": which, "data_root": args.data_root, "data": args.data, "k": args.k,
                        "samples": args.samples, "baseline_root": tmp}
                proc = subprocess.run([sys.executable, __file__, "--data-root", args.data_root, "--data", args.data,
                                       "--child", json.dumps(spec)], capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"the {which} fit for peak RSS failed (exit {proc.returncode})")
                rows[which]["peak_rss_mb"] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    speedup = statistics.median(b["seconds_per_sample"] / c["seconds_per_sample"]
                                for b, c in zip(per["baseline"], per["current"]))
    result = {"data": args.data, "k": args.k, "samples": args.samples, "cpu_count": os.cpu_count(),
              "loadavg_before": load_before, "loadavg_after": load_after, "baseline_over_current": speedup, **rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.out}.json"
    path.write_text(json.dumps(result, indent=1))
    for which in versions:
        row = rows[which]
        rss = f", peak RSS {row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else ""
        print(f"{which:8s} {row['revision']}: {row['seconds_per_sample']:.2f} s/sample, {row['cores_used']:.2f} cores"
              f"{rss}")
    print(f"baseline / current: {speedup:.2f}x; wrote {path}")


if __name__ == "__main__":
    main()
