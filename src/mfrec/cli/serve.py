"""``mfrec serve``: one trained run behind a JSON API and a web page (the optional serve extra).

    pip install -e ".[serve]"
    mfrec serve --experiment RUN                 # http://127.0.0.1:8000/  and  /api/v1/docs
    mfrec serve --experiment RUN --host 0.0.0.0 --port 8080 --workers 2
    mfrec serve --experiment RUN --processes 1       # one process (default: one per CPU core, at most 4)

The run is loaded once, before the server binds, so a bad run is one sentence and exit code 2.
"""

from __future__ import annotations

import click

from mfrec.cli.common import RUNS_ROOT_OPTION, friendly_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiment", "-e", metavar="RUN_OR_PATH", default=None,
              help="Run folder, its name under --runs-root, or a training --name (latest). Default: the most recent "
                   "successful run that answers a made-up user.")
@RUNS_ROOT_OPTION
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; the default answers this machine only (0.0.0.0 answers the network).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Requests each process scores at once, each on a worker thread (default: the CPU cores per "
                   "process, at most 4); the others wait.")
@click.option("--processes", default=None, type=click.IntRange(min=1),
              help="Server processes, each loading the run (default: one per CPU core, at most 4), behind one "
                   "dispatcher that gives each new connection to the process holding the fewest: a request's "
                   "Python holds its process's GIL, so requests score in parallel across processes.")
@click.option("--rank-by", default="auto", show_default=True, metavar="RUN_OR_KIND|auto|none",
              help="The run that ranks made-up and existing users' lists (Inference.py --rank-by), loaded once at "
                   "start: auto, the newest finished ials, else ease, run on a rating run's dataset (if any); none; "
                   "or a run folder or name, or a model kind. A request's rank_by can turn it off (none).")
@click.option("--max-ratings", default=None, type=click.IntRange(min=1), help="Cap on a made-up user's ratings per request (default 500).")
@click.option("--max-top", default=None, type=click.IntRange(min=1), help="Cap on the length of one list (default 100).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn's log level.")
@friendly_errors
def serve(experiment, runs_root, host, port, workers, processes, rank_by, max_ratings, max_top, log_level):
    """Serve a trained run: the web page at / and the JSON API at /api/v1 (OpenAPI page: /api/v1/docs)."""
    from mfrec.serve import require_extra

    require_extra()
    import uvicorn

    from mfrec.inference import open_run
    from mfrec.serve.app import create_app
    from mfrec.serve.service import Caps, Service, load_ranker

    exp, how = open_run(experiment, runs_root, mode="like" if experiment is None else None)
    click.echo(how)
    processes, workers = default_concurrency(processes, workers)
    given = {"workers": workers, "max_ratings": max_ratings, "max_top": max_top}
    ranker, ranker_note, ranker_run = load_ranker(exp, rank_by, runs_root)
    click.echo(ranker_note)
    service = Service(exp, Caps(**{k: v for k, v in given.items() if v is not None}), ranker, ranker_note)
    threads = f"{service.caps.workers} scoring thread{'s' if service.caps.workers != 1 else ''}"
    click.echo(f"serving {exp.name} ({service.kind}, dataset {service.rec.dataset.name}) on http://{host}:{port}/ "
               f"with {threads}" + (f" in each of {processes} processes" if processes > 1 else "")
               + f"; API docs at http://{host}:{port}/api/v1/docs")
    from mfrec.serve.tcp import NoDelayProtocol

    if processes == 1:
        uvicorn.run(create_app(service), host=host, port=port, log_level=log_level, http=NoDelayProtocol)
        return
    from dataclasses import asdict

    from mfrec.serve.balance import Dispatcher

    # one dispatcher process accepts and hands each connection to the server process holding the fewest
    # (mfrec.serve.balance: a shared listening socket let 8 keep-alive clients land 6/2 or 7/1); each
    # process loads the run itself (checked here first, so a bad run fails before binding)
    settings = {"run": str(exp.path.resolve()), "caps": asdict(service.caps), "rank_by": ranker_run,
                "runs_root": str(runs_root)}
    dispatcher = Dispatcher(host, port, processes, settings, log_level=log_level)  # binds first, then starts them
    del service, exp, ranker
    code = dispatcher.run()
    if code:
        raise SystemExit(code)


def default_concurrency(processes: int | None, workers: int | None, cores: int | None = None) -> tuple[int, int]:
    """(processes, scoring threads per process) where not given: one process per usable CPU core (at most
    4) and the cores left to each process as threads (at least 1, at most 4).

    Measured on 2 cores (ML-25M shape, 8 clients, a loaded machine): 2 processes of 1 thread answered with
    p99 40-70 ms, 2 processes of 2 threads 98-119 ms (two threads of one process wait for its GIL); with
    the dispatcher, under load average 6-7, 2 x 1 gave 225-312 requests/s and 1 x 2 129-153."""
    import os

    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if processes is None:
        processes = max(1, min(4, cores))
    if workers is None:
        workers = max(1, min(4, cores // processes))
    return processes, workers
