"""Benchmark: prepare 25M synthetic ratings written in the ml-25m CSV layout.

1. Generate 25M synthetic ratings in ML-25M shape (``--shape ml-25m``) and write them as
   ``ratings.csv`` / ``movies.csv`` (ml-25m layout) into ``--work`` (reused when already there).
2. Time ``Data_processing.py --dataset ml-25m --source <work> --split random`` in a child process:
   read, map ids, split, CSR by user and by movie, write. Peak RSS is the child's ``ru_maxrss``.

Writes ``benchmarks/results/prepare_25m.json``. Target: <= 20 s wall, <= 3 GB peak RSS on a
2-core machine. The load average before and after is recorded, since other work shares the CPUs.

    python benchmarks/prepare_25m.py [--ratings 25000095] [--work /tmp/mfrec-bench-25m] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def make_raw_files(work: Path, n_ratings: int, seed: int, shape: str = "ml-25m") -> dict:
    """Generate and write the CSVs (ml-25m layout) in ``shape``'s proportions unless a matching set is already in ``work``."""
    stamp = work / "generated.json"
    want = {"ratings": n_ratings, "seed": seed, "shape": shape}
    if stamp.is_file() and json.loads(stamp.read_text()).get("spec") == want and (work / "ratings.csv").is_file():
        return json.loads(stamp.read_text())
    from mfrec.data.synthetic import SHAPES, SyntheticSpec, generate
    from mfrec.data.writers import write_raw

    nu, nm, _ = SHAPES[shape]
    scale = n_ratings / SHAPES[shape][2]
    spec = SyntheticSpec(max(50, int(nu * min(1.0, scale ** 0.5))), max(50, int(nm * min(1.0, scale ** 0.5))),
                         n_ratings, seed, half_stars=True)
    t0 = time.perf_counter()
    raw = generate(spec)
    t1 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    write_raw(raw, work, "ml-25m")
    t2 = time.perf_counter()
    info = {
        "spec": want,
        "ratings_written": raw.ratings.height,
        "users": spec.n_users,
        "movies": spec.n_movies,
        "generate_seconds": round(t1 - t0, 2),
        "write_csv_seconds": round(t2 - t1, 2),
        "ratings_csv_mb": round((work / "ratings.csv").stat().st_size / 1e6, 1),
    }
    stamp.write_text(json.dumps(info, indent=2) + "\n")
    return info


def time_prepare(work: Path, root: Path) -> dict:
    """Run the prepare command in a child process; wall seconds, peak RSS and its progress lines."""
    cmd = [sys.executable, str(REPO / "Data_processing.py"), "--dataset", "ml-25m", "--source", str(work),
           "--split", "random", "--data-root", str(root), "--name", "bench"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed ({proc.returncode}):\n{proc.stderr}")
    stages = [
        {"at_seconds": float(m.group(1)), "step": m.group(2)}
        for m in re.finditer(r"^\[\s*([\d.]+)s\] (.*)$", proc.stderr, re.M)
    ]
    return {
        "wall_seconds": round(wall, 2),
        "cpu_user_seconds": round(after.ru_utime - before.ru_utime, 2),
        "cpu_system_seconds": round(after.ru_stime - before.ru_stime, 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),  # Linux: KiB; max over children so far
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "stages": stages,
        "summary": proc.stdout.strip().splitlines(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratings", type=int, default=25_000_095)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mfrec-bench-25m")
    ap.add_argument("--repeat", type=int, default=1, help="time the prepare step this many times (fresh child each)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "prepare_25m.json")
    args = ap.parse_args()

    gen = make_raw_files(args.work, args.ratings, args.seed)
    root = Path(tempfile.mkdtemp(prefix="mfrec-bench-root-"))
    runs = []
    try:
        for _ in range(args.repeat):
            # each run in a fresh child so ru_maxrss is that run's peak (RUSAGE_CHILDREN keeps the max)
            runs.append(json.loads(subprocess.run(
                [sys.executable, __file__, "--_one", str(args.work), str(root)], capture_output=True, text=True, check=True,
            ).stdout) if args.repeat > 1 else time_prepare(args.work, root))
            print(f"prepare: {runs[-1]['wall_seconds']:.1f} s wall, {runs[-1]['peak_rss_mb']:.0f} MB peak RSS, "
                  f"load {runs[-1]['load_average_before'][0]:.2f}", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best = min(runs, key=lambda r: r["wall_seconds"])
    result = {
        "benchmark": "prepare_25m",
        "what": "Data_processing.py --dataset ml-25m --source <ml-25m CSV layout> --split random: read, map ids, split, CSR both ways, write",
        "ratings": args.ratings,
        "generated": gen,
        "target": {"wall_seconds": 20, "peak_rss_mb": 3072},
        "best": {k: best[k] for k in ("wall_seconds", "peak_rss_mb", "cpu_user_seconds", "cpu_system_seconds")},
        "runs": runs,
        **run_facts(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["best"]))


def run_facts() -> dict:
    """The machine, the library versions and the finishing time, for a benchmark's JSON."""
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": _versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _versions() -> dict:
    import numba
    import numpy
    import polars

    return {"numpy": numpy.__version__, "numba": numba.__version__, "polars": polars.__version__}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--_one":
        print(json.dumps(time_prepare(Path(sys.argv[2]), Path(sys.argv[3]))))
    else:
        main()
