"""Load test of ``mfrec serve`` on loopback: requests/s and p50/p99 latency at 1, 8 and 32 clients.

    .venv/bin/python benchmarks/serve_load.py --run /tmp/serve-runs/<ml-100k mf-genre run>
    .venv/bin/python benchmarks/serve_load.py --run R --requests 2000 --seconds 60 --clients 1,8,32 --processes 1,2

For each model (and each ``--processes`` value; ``auto``, the default, is the server's own default of
one process per core) the script starts ``python -m mfrec serve`` on a free 127.0.0.1 port, then, for
each number of concurrent clients, sends a fixed number of ``POST /api/v1/recommendations`` (a made-up
user with 20 ratings of popular films, top 10, the default filters and the "why" line) from that many
keep-alive connections of a small HTTP/1.1 client in this process (asyncio streams on uvloop when it
is installed), stopping early at the time limit. Every answer must be 200 with 10 movies; the script
says how many failed and exits 1 if any did. A warm-up of 50 requests per level is not counted.

The load generator shares the machine's cores with the server, so each level also reports the CPU
each side spent per request: the server's (all its processes, from /proc) and the generator's own
(getrusage), and the generator's share of the two.

The models: ``--run`` (a trained ml-100k run), and one of ML-25M's shape (162,541 users x 59,047
movies, k = 64, mf-genre with 20 genres) built in ``--work``: a synthetic dataset of that shape
(``--shape-ratings`` ratings; serving a made-up user does not depend on how many ratings the
dataset has) and a run with random factors, since training one here takes far longer than the
benchmark and the speed does not depend on the values. Nothing but loopback is used.

Writes ``benchmarks/results/serve_load.json`` (with the machine's load average before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from mfrec.cli.serve import default_concurrency

RESULTS = Path(__file__).resolve().parent / "results" / "serve_load.json"
ML25M = (162_541, 59_047)


def build_25m_shape(work: Path, n_ratings: int, k: int, seed: int = 0) -> Path:
    """A prepared synthetic dataset of ML-25M's shape and a run with random k-factors on it (reused)."""
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.synthetic import SyntheticSpec, generate
    from mfrec.experiments import Run
    from mfrec.models.factor import FactorModel

    runs = work / "Experiments_"
    done = sorted(runs.glob(f"ml25m-shape-k{k}-*/summary.json"))
    if done:
        return done[-1].parent
    data = work / "Training_data" / "ml25m-shape"
    if not (data / "manifest.json").is_file():
        print(f"generating {n_ratings:,} synthetic ratings in ML-25M shape ...", flush=True)
        raw = generate(SyntheticSpec(n_users=ML25M[0], n_movies=ML25M[1], n_ratings=n_ratings, seed=seed, half_stars=True))
        prepare(raw, SplitSpec("random", 0.1, 0.05, seed=seed), name="ml25m-shape", root=work / "Training_data")
    ds = load(data)
    rng = np.random.default_rng(seed)
    n_genres = len(ds.genres)
    gm = ds.genre_matrix.tocsr()
    scale = 0.3 / np.sqrt(k)
    model = FactorModel(
        mu=np.float32(3.53),
        user_bias=rng.normal(0, 0.3, ds.n_users).astype(np.float32),
        movie_bias=rng.normal(0, 0.4, ds.n_movies).astype(np.float32),
        user_factors=rng.normal(0, scale, (ds.n_users, k)).astype(np.float32),
        movie_factors=rng.normal(0, scale, (ds.n_movies, k)).astype(np.float32),
        genre_factors=rng.normal(0, scale, (n_genres, k)).astype(np.float32),
        genre_indptr=gm.indptr.astype(np.int64), genre_indices=gm.indices.astype(np.int32),
        user_ids=np.asarray(ds.user_ids.ids, np.int64), movie_ids=np.asarray(ds.movie_ids.ids, np.int64),
        config={"model": "mf-genre", "factors": k, "reg": 0.4, "reg_bias": 1.0, "weighted_reg": True,
                "reg_exponent": 0.75},
    )
    config = {"model": "mf-genre", "factors": k, "dataset": ds.name, "data_path": str(data), "note": "random factors"}
    run = Run.create(f"ml25m-shape-k{k}", runs, config=config)
    model.save(run.model_path)
    run.save_summary({"dataset": ds.name, "model": "mf-genre", "note": "random factors of ML-25M shape"}, status="ok")
    return run.path


def bodies(run: Path, n: int, per_user: int, seed: int) -> tuple[list[bytes], dict]:
    """``n`` request bodies: each a made-up user rating ``per_user`` of the 500 most-rated movies."""
    import mfrec

    exp = mfrec.load_experiment(run)
    ds = exp.dataset
    pop = np.diff(np.asarray(ds.train_by_movie.indptr))
    top = np.asarray(ds.movie_ids.ids)[np.argsort(-pop, kind="stable")[:500]]
    lo, hi = ds.rating_scale
    steps = np.arange(lo, hi + 0.01, 0.5 if lo % 1 else 1.0)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        movies = rng.choice(top, per_user, replace=False)
        ratings = [{"movie": int(m), "rating": float(rng.choice(steps))} for m in movies]
        out.append(json.dumps({"ratings": ratings, "top": 10}).encode())
    facts = {"run": exp.name, "dataset": ds.name, "users": int(ds.n_users), "movies": int(ds.n_movies),
             "k": int(exp.config.get("factors") or 0), "model": exp.config.get("model")}
    return out, facts


class Connection:
    """One keep-alive HTTP/1.1 connection: POST a JSON body, read status and body (Content-Length)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self):
        self.writer.close()


async def load_level(port: int, payloads: list[bytes], clients: int, requests: int, seconds: float, warmup: int = 50):
    """``requests`` POSTs from ``clients`` connections (stopping at ``seconds``): latencies, failures and how
    many were sent (the warm-up included)."""
    conns = [Connection("127.0.0.1", port) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[tuple[float, float]] = []  # (sent, answered) of each counted request
    failures: list[str] = []
    counter = {"next": 0}
    total = warmup + requests

    async def worker(c: Connection, deadline: float):
        while counter["next"] < total and time.perf_counter() < deadline:
            i = counter["next"]
            counter["next"] += 1
            t0 = time.perf_counter()
            try:
                status, body = await c.post("/api/v1/recommendations", payloads[i % len(payloads)])
                ok = status == 200 and len(json.loads(body)["items"]) == 10
                if not ok:
                    failures.append(f"{status}: {body[:200]!r}")
            except Exception as e:  # noqa: BLE001 - a failed request is counted, not fatal
                failures.append(f"{type(e).__name__}: {e}")
                ok = False
            if i >= warmup:
                latencies.append((t0, time.perf_counter()))

    start = time.perf_counter()
    await asyncio.gather(*(worker(c, start + seconds) for c in conns))
    for c in conns:
        c.close()
    return latencies, failures, counter["next"]


def process_tree(pid: int) -> list[int]:
    """A process and its live descendants (uvicorn's supervisor and its worker processes), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):  # a process that just ended
            continue
    return out


def tree_cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds of a process and of each of its live descendants, by pid."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            out[p] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15 of stat)
        except (OSError, ValueError, IndexError):
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    return sum(tree_cpu_by_process(pid).values())


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MiB) of a process and its live descendants (pages shared between them, such as the
    memory-mapped dataset, counted once per process)."""
    total = 0.0
    for p in process_tree(pid):
        try:
            total += next(int(line.split()[1]) for line in Path(f"/proc/{p}/status").read_text().splitlines()
                          if line.startswith("VmRSS:")) / 1024
        except (OSError, ValueError, StopIteration):
            continue
    return total


def own_cpu_seconds() -> float:
    """This process's (the load generator's) user + system CPU seconds."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def event_loop_runner():
    """asyncio.run, on uvloop when it is installed (the serve extra brings it): the generator's own CPU per
    request is then smaller, and it shares the 2 cores with the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run, "asyncio"
    return (lambda coro: uvloop.run(coro)), "uvloop"


def run_levels(port: int, payloads, clients_list, requests: int, seconds: float, server_pid: int | None = None
               ) -> list[dict]:
    out = []
    run, loop_name = event_loop_runner()
    for clients in clients_list:
        t0 = time.perf_counter()
        cpu0, by0 = own_cpu_seconds(), tree_cpu_by_process(server_pid) if server_pid else {}
        lat, failures, sent = run(load_level(port, payloads, clients, requests, seconds))
        wall = time.perf_counter() - t0
        client_cpu = own_cpu_seconds() - cpu0
        by1 = tree_cpu_by_process(server_pid) if server_pid else {}
        # each server process's share of the server's CPU in this level: how evenly the work spread
        by = {p: by1[p] - by0.get(p, 0.0) for p in by1}
        server_cpu = sum(by.values()) if server_pid else None
        spans = np.asarray(lat).reshape(-1, 2)
        ms = (spans[:, 1] - spans[:, 0]) * 1000
        done = len(lat)
        # throughput over the counted requests only (the warm-up before them is left out)
        span = float(spans[:, 1].max() - spans[:, 0].min()) if done else 0.0
        row = {
            "clients": clients, "requests": done, "asked": requests, "failed": len(failures),
            "wall_s": round(wall, 2),
            "requests_per_s": round(done / span, 1) if done else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 2) if done else None,
            "p90_ms": round(float(np.percentile(ms, 90)), 2) if done else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 2) if done else None,
            "max_ms": round(float(ms.max()), 2) if done else None,
            # CPU per request sent (warm-up included) on this machine's cores: the server's (all its
            # processes) and the load generator's own (this process, sharing the cores with the server)
            "server_cpu_ms_per_request": round(1000 * server_cpu / sent, 2) if server_cpu is not None else None,
            "client_cpu_ms_per_request": round(1000 * client_cpu / sent, 2),
            "client_cpu_share": round(client_cpu / (client_cpu + server_cpu), 3) if server_cpu else None,
            "server_cpu_share_by_process": [round(by[p] / server_cpu, 3) for p in sorted(by)] if server_cpu else None,
            "client_loop": loop_name,
            "first_failures": failures[:3],
        }
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def serve(run: Path, workers: int | None, processes: int | None = None, extra: list[str] = (),
          design: str = "dispatcher"):
    """``python -m mfrec serve`` for ``run`` on a free 127.0.0.1 port (``extra``: more of its options), once it
    answers: (process, port). ``design="shared-socket"`` starts the design this one replaced, for comparison:
    uvicorn's ``workers=N`` processes accepting from one shared listening socket (UV_TCP_SINGLE_ACCEPT=1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = None
    if design == "dispatcher":
        cmd = [sys.executable, "-m", "mfrec", "serve", "--experiment", str(run), "--port", str(port),
               "--log-level", "warning"]
        if workers:
            cmd += ["--workers", str(workers)]
        if processes:
            cmd += ["--processes", str(processes)]
        cmd += list(extra)
    elif design == "shared-socket":
        from dataclasses import asdict

        from mfrec.serve.app import SETTINGS_ENV
        from mfrec.serve.service import Caps

        n, threads = default_concurrency(processes, workers)
        env = dict(os.environ, UV_TCP_SINGLE_ACCEPT="1", **{SETTINGS_ENV: json.dumps(
            {"run": str(Path(run).resolve()), "caps": asdict(Caps(workers=threads)), "rank_by": "none"})})
        cmd = [sys.executable, "-c", "import uvicorn; from mfrec.serve.tcp import NoDelayProtocol; "
               f"uvicorn.run('mfrec.serve.app:app_from_environment', factory=True, workers={n}, host='127.0.0.1', "
               f"port={port}, log_level='warning', http=NoDelayProtocol)"]
    else:
        raise SystemExit(f"unknown server design {design!r}")
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 600
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"mfrec serve for {run} did not come up")
            time.sleep(0.5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, help="a trained ml-100k run folder")
    p.add_argument("--work", type=Path, default=Path("/tmp/mfrec-bench-serve"), help="where the ML-25M-shape run is built")
    p.add_argument("--shape-ratings", type=int, default=5_000_000)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--no-25m", action="store_true", help="only the --run model")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", type=int, default=2000, help="counted requests per level")
    p.add_argument("--seconds", type=float, default=60.0, help="time limit per level")
    p.add_argument("--ratings", type=int, default=20, help="ratings per made-up user")
    p.add_argument("--workers", type=int, default=None, help="mfrec serve --workers (default: its own)")
    p.add_argument("--processes", default="auto",
                   help="mfrec serve --processes, one server per value: 1,2 (auto: its default, one per core)")
    p.add_argument("--designs", default="dispatcher",
                   help="server designs, in turn: dispatcher (mfrec serve) and/or shared-socket (the design it "
                        "replaced: N uvicorn processes on one listening socket), e.g. dispatcher,shared-socket")
    p.add_argument("--rounds", type=int, default=1, help="start each design this many times, in turn")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()
    clients = [int(c) for c in a.clients.split(",")]
    models = []
    if a.run:
        models.append(("ml-100k", a.run))
    if not a.no_25m:
        models.append(("ml-25m-shape", build_25m_shape(a.work, a.shape_ratings, a.k)))
    report = {"benchmark": "serve_load", "machine": platform.machine(), "cpus": os.cpu_count(),
              "python": platform.python_version(), "load_average_before": list(os.getloadavg()),
              "endpoint": "POST /api/v1/recommendations", "ratings_per_request": a.ratings, "top": 10,
              "requests_per_level": a.requests, "seconds_limit_per_level": a.seconds, "models": []}
    failed = 0
    for label, run in models:
        payloads, facts = bodies(run, 200, a.ratings, seed=1)
        for round_, given, design in [(r, g, d) for r in range(1, a.rounds + 1) for g in a.processes.split(",")
                                      for d in a.designs.split(",")]:
            processes, threads = default_concurrency(None if given == "auto" else int(given), a.workers)
            proc, port = serve(run, a.workers, processes, design=design)
            try:
                print(f"{label}, {processes} process(es), {design}, round {round_}: {facts}", flush=True)
                levels = run_levels(port, payloads, clients, a.requests, a.seconds, server_pid=proc.pid)
                rss_mb = round(tree_rss_mb(proc.pid), 1)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            failed += sum(r["failed"] for r in levels)
            report["models"].append({"label": label, **facts, "design": design, "round": round_,
                                     "processes": processes,
                                     "threads_per_process": threads, "server_rss_mb": rss_mb,
                                     "levels": levels})
    report["load_average_after"] = list(os.getloadavg())
    report["failed_requests"] = failed
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {a.out}; {failed} failed requests")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
