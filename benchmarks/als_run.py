"""Whole ``Main.py`` runs in new processes: start-up with a cold vs a warm Numba cache, and the peak
RSS and epoch time of a full training run. Writes ``benchmarks/results/als_run.json``.

    .venv/bin/python benchmarks/als_run.py startup --data ml-100k-u1
    .venv/bin/python benchmarks/als_run.py memory --data synth-25m --factors 64 --epochs 3

``startup`` runs the same 1-epoch training twice with ``NUMBA_CACHE_DIR`` pointing at a fresh
folder: the first run compiles and saves the kernels, the second must only load them
(``NUMBA_DEBUG_CACHE`` lines are counted to prove it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def run_main(args: list[str], env: dict[str, str], log: Path) -> dict:
    """Run Main.py; wall seconds, exit code and the child's own peak RSS (wait4)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, str(ROOT / "Main.py"), *args], cwd=ROOT, env=env, stdout=f, stderr=f)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_seconds": wall, "exit_code": p.returncode, "peak_rss_mb": ru.ru_maxrss / 1024.0,
            "user_cpu_s": ru.ru_utime, "loadavg_after": loadavg()}


def run_folder(text: str) -> Path | None:
    for line in text.splitlines():
        if line.strip().startswith("run folder"):
            return Path(line.split("run folder", 1)[1].strip())
    return None


def startup(args) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="numba-cache-"))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "NUMBA_DEBUG_CACHE": "1"}
    out = {"data": args.data, "model": args.model, "cache_dir": str(cache), "runs": []}
    for label in ("first (cold cache)", "second (warm cache)"):
        log = Path(tempfile.mkstemp(suffix=".log")[1])
        r = run_main(["--data", args.data, "--model", args.model, "--epochs", "1", "--patience", "0",
                      "--runs-root", args.root, "--quiet", "--name", "startup-bench"], env, log)
        text = log.read_text()
        r["label"] = label
        r["numba_cache_saved"] = text.count("data saved to")
        r["numba_cache_loaded"] = text.count("data loaded from")
        folder = run_folder(text)
        if folder is not None and (folder / "summary.json").is_file():
            s = json.loads((folder / "summary.json").read_text())
            r["first_epoch_seconds"] = s.get("seconds_per_epoch")
            r["train_seconds"] = s.get("train_seconds")
        out["runs"].append(r)
        print(f"{label}: {r['wall_seconds']:.1f} s wall, kernels saved {r['numba_cache_saved']}, "
              f"loaded {r['numba_cache_loaded']}, epoch {r.get('first_epoch_seconds')}", flush=True)
    return out


def memory(args) -> dict:
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    cmd = ["--data", args.data, "--model", "mf", "--factors", str(args.factors), "--solver", args.solver,
           "--epochs", str(args.epochs), "--patience", "0", "--runs-root", args.root, "--quiet", "--name", "memory-bench"]
    before = loadavg()
    r = run_main(cmd, dict(os.environ), log)
    text = log.read_text()
    r.update(command="python Main.py " + " ".join(cmd), loadavg_before=before)
    folder = run_folder(text)
    if folder is not None and (folder / "summary.json").is_file():
        s = json.loads((folder / "summary.json").read_text())
        r.update({k: s.get(k) for k in ("seconds_per_epoch", "train_seconds", "test_rmse", "epochs_run")})
        r["summary_peak_rss_mb"] = s.get("peak_rss_mb")  # the run's own getrusage figure
        r["run_folder"] = str(folder)
    print(text[-1500:])
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["startup", "memory"])
    ap.add_argument("--data", default="synth-25m")
    ap.add_argument("--model", default="mf")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--solver", default="cg")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "mfrec-bench-runs"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "als_run.json"))
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["cpu_count"] = os.cpu_count()
    results["note"] = "noisy shared VM: compare figures together with the load averages recorded beside them"
    results[args.what] = startup(args) if args.what == "startup" else memory(args)
    results[args.what]["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results[args.what], indent=2))


if __name__ == "__main__":
    main()
