"""Benchmark: ``Data_processing.py --engine numba`` against ``--engine polars`` and ``--engine stream`` on 25M and 32M ratings.

1. Generate synthetic ratings in ML-25M and ML-32M shape (``prepare_25m.make_raw_files``) and write
   them in the ml-25m CSV layout into ``--work/<shape>`` (reused when already there).
2. For each shape, prepare with each engine (``--engines``; the stream engine with
   ``--memory-budget``) in a fresh child process, round robin, ``--repeat`` times: wall seconds,
   peak RSS (the child's ``VmHWM``) and peak address space (``VmPeak``). Medians are reported, with
   each engine's ratio to the Numba engine.
3. Under ``prlimit --as`` (an address-space limit; with numba and polars in ``--engines``): each of
   the two once more with the limit set just above the *other* one's median VmPeak.
4. Under a cgroup v1 memory limit (``--cgroup-limit`` MB, root only; ``--no-cgroup`` skips it): each
   engine once more in a fresh memory cgroup, the stream engine with its default budget (half of
   what the cgroup leaves). The cgroup's ``memory.max_usage_in_bytes`` and ``memory.failcnt`` and
   the exit code (137: killed by the cgroup's OOM killer) are recorded. A cgroup counts resident
   memory (and the page cache the group charges, which the kernel reclaims under the limit), not
   reserved address space, so it measures what ``prlimit --as`` cannot.

Writes ``--out`` (default ``benchmarks/results/prepare_engines.json``); the load average before
and after each run is recorded, since other work may share the CPUs.

    python benchmarks/prepare_engines.py [--shapes ml-25m ml-32m] [--repeat 2] [--work /tmp/mfrec-bench-engines]
        [--engines numba polars stream] [--memory-budget 256MB] [--cgroup-limit 512]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from prepare_25m import make_raw_files, run_facts  # noqa: E402

# the child: the prepare command, then its peak address space and peak RSS from /proc
CHILD = """
import json, runpy, sys
sys.argv = ["Data_processing.py", *sys.argv[1:]]
code = 0
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({{"vm_peak_mb": int(status["VmPeak"].split()[0]) / 1024, "vm_hwm_mb": int(status["VmHWM"].split()[0]) / 1024}}),
      file=sys.stderr)
sys.exit(code)
"""


CGROUP_ROOT = Path("/sys/fs/cgroup/memory")


def run_once(work: Path, root: Path, engine: str, limit_bytes: int | None = None, budget: str | None = None,
             cgroup_bytes: int | None = None) -> dict:
    """One prepare in a child: wall seconds, CPU, ru_maxrss, VmPeak, exit code and its last lines.

    ``limit_bytes``: under ``prlimit --as``; ``cgroup_bytes``: in a fresh cgroup v1 memory group with
    that limit (its peak usage and fail count are added).
    """
    cmd = [sys.executable, "-c", CHILD.format(script=str(REPO / "Data_processing.py")), "--dataset", "ml-25m",
           "--source", str(work), "--split", "random", "--data-root", str(root), "--name", f"bench-{engine}",
           "--engine", engine]
    if budget is not None and engine == "stream":
        cmd += ["--memory-budget", budget]
    if limit_bytes is not None:
        cmd = ["prlimit", f"--as={limit_bytes}", *cmd]
    group = None
    if cgroup_bytes is not None:
        group = CGROUP_ROOT / f"mfrec-bench-{os.getpid()}-{engine}"
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(cgroup_bytes))
        if (group / "memory.memsw.limit_in_bytes").exists():
            (group / "memory.memsw.limit_in_bytes").write_text(str(cgroup_bytes))
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    enter = (lambda: (group / "cgroup.procs").write_text(str(os.getpid()))) if group is not None else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=enter)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    cgroup = None
    if group is not None:
        cgroup = {"limit_mb": round(cgroup_bytes / 2**20),
                  "max_usage_mb": round(int((group / "memory.max_usage_in_bytes").read_text()) / 2**20, 1),
                  "failcnt": int((group / "memory.failcnt").read_text())}
        group.rmdir()
    peaks = {}
    for line in err.strip().splitlines()[::-1]:
        if line.startswith("{") and "vm_peak_mb" in line:
            peaks = json.loads(line)
            break
    shutil.rmtree(root / f"bench-{engine}", ignore_errors=True)
    return {
        "engine": engine,
        "limit_as_mb": None if limit_bytes is None else round(limit_bytes / 2**20),
        "returncode": proc.returncode,
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(peaks.get("vm_hwm_mb", float("nan")), 1),
        "peak_address_space_mb": round(peaks.get("vm_peak_mb", float("nan")), 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "stages": [line for line in err.splitlines() if line.startswith("[")],
        "error": None if proc.returncode == 0 else _first_error(err),
        "summary_ratings": next((line.split()[-1] for line in out.splitlines() if line.strip().startswith("ratings")), None),
        "summary_engine": next((line.split(None, 1)[1] for line in out.splitlines() if line.strip().startswith("engine")), None),
        **({"cgroup": cgroup} if cgroup is not None else {}),
    }


def _first_error(err: str) -> str:
    """The line that says why a child failed: an allocation failure or an error, else the last line."""
    lines = err.strip().splitlines() or ["(no output)"]
    for line in lines:
        if "memory allocation" in line or "Error" in line or line.startswith("Error"):
            return line[:300]
    return lines[-1][:300]


def median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", nargs="+", default=["ml-25m", "ml-32m"])
    ap.add_argument("--repeat", type=int, default=2, help="rounds of the engines per shape")
    ap.add_argument("--engines", nargs="+", default=["numba", "polars"], choices=["numba", "polars", "stream"])
    ap.add_argument("--memory-budget", default="256MB", help="the stream engine's --memory-budget in the timed runs")
    ap.add_argument("--cgroup-limit", type=int, default=None, metavar="MB",
                    help="also run each engine once in a cgroup v1 memory group with this limit (root only)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mfrec-bench-engines")
    ap.add_argument("--no-limit", action="store_true", help="skip the prlimit --as runs")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "prepare_engines.json")
    args = ap.parse_args()

    from mfrec.data.synthetic import SHAPES

    results = []
    root = Path(tempfile.mkdtemp(prefix="mfrec-bench-engines-"))
    try:
        for shape in args.shapes:
            n = SHAPES[shape][2]
            work = args.work / shape
            print(f"{shape}: generating {n:,} ratings into {work} (unless there)", file=sys.stderr)
            gen = make_raw_files(work, n, args.seed, shape)
            runs: dict[str, list[dict]] = {e: [] for e in args.engines}
            for rnd in range(args.repeat):
                order = args.engines[rnd % len(args.engines):] + args.engines[:rnd % len(args.engines)]
                for engine in order:
                    r = run_once(work, root, engine, budget=args.memory_budget)
                    if r["returncode"] != 0:
                        raise SystemExit(f"{shape} {engine} failed: {r['error']}")
                    runs[engine].append(r)
                    print(f"  {engine:6s} {r['wall_seconds']:6.1f} s  {r['peak_rss_mb']:6.0f} MB RSS  "
                          f"{r['peak_address_space_mb']:6.0f} MB VmPeak  load {r['load_average_before'][0]:.2f}", file=sys.stderr)
            med = {e: {k: median(rs, k) for k in ("wall_seconds", "peak_rss_mb", "peak_address_space_mb")} for e, rs in runs.items()}
            entry = {
                "shape": shape,
                "ratings": gen["ratings_written"],
                "users": gen["users"],
                "movies": gen["movies"],
                "ratings_csv_mb": gen["ratings_csv_mb"],
                # userId, movieId int32, rating float32, timestamp int64: the ratings as columns in memory
                "ratings_in_memory_mb": round(gen["ratings_written"] * 20 / 2**20, 1),
                "median": med,
                "over_numba": {e: {k: round(med[e][k] / med["numba"][k], 2) for k in med["numba"]} for e in med if e != "numba"}
                if "numba" in med else {},
                "stream_memory_budget": args.memory_budget if "stream" in med else None,
                "runs": runs,
            }
            if args.cgroup_limit:
                limited = []
                for engine in args.engines:
                    r = run_once(work, root, engine, cgroup_bytes=args.cgroup_limit << 20)
                    limited.append(r)
                    print(f"  {engine:6s} in a {args.cgroup_limit} MB cgroup: rc {r['returncode']} {r['wall_seconds']:.1f} s, "
                          f"cgroup peak {r['cgroup']['max_usage_mb']:.0f} MB, RSS {r['peak_rss_mb']:.0f} MB {r['summary_engine'] or ''}",
                          file=sys.stderr)
                entry["under_cgroup_limit"] = limited
            if not args.no_limit and {"numba", "polars"} <= set(args.engines):
                limited = []
                for engine, other in (("numba", "polars"), ("polars", "numba")):
                    limit = int(med[other]["peak_address_space_mb"] * 1.02 * 2**20)
                    r = run_once(work, root, engine, limit)
                    limited.append(r)
                    print(f"  {engine:6s} under --as {limit / 2**20:.0f} MB: rc {r['returncode']} {r['error'] or ''}", file=sys.stderr)
                entry["under_address_space_limit"] = limited
            results.append(entry)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "benchmark": "prepare_engines",
        "what": f"Data_processing.py --dataset ml-25m --source <CSV layout> --split random --engine {'|'.join(args.engines)}, "
                "each run in a fresh child, round robin; medians; then each engine in a cgroup v1 memory limit "
                "(--cgroup-limit) and/or numba and polars under prlimit --as just above the other's peak address space",
        "results": results,
        **run_facts(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps([{r["shape"]: r["median"], "ratio": r["over_numba"]} for r in results]))


if __name__ == "__main__":
    main()
