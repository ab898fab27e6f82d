"""``mfrec serve``: one trained run behind a JSON API (``/api/v1/...``) and a web page, on one process.

Install the optional extra first: ``pip install -e ".[serve]"`` (FastAPI, uvicorn, pydantic). The
core never imports this package; ``mfrec serve`` without the extra says which command installs it.

- ``service.Service``: the loaded run and its ``Recommender`` (loaded once, at start), every answer
  built by the inference code Inference.py uses (``mfrec.inference.api.run_request``, the
  ``Recommender``'s ``TitleIndex`` and ``Filters``), and the caps a request must stay within.
- ``app.create_app``: the FastAPI application: routers per resource, pydantic models for every
  request and response (the OpenAPI page at ``/api/v1/docs`` is true by construction), one handler
  turning mfrec's own errors into 4xx JSON ``{"error": "one sentence"}``, a request-body size limit,
  and the page under ``/`` (static HTML, CSS and JavaScript in ``static/``, no build step, no CDN).
- Concurrency: scoring is CPU-bound NumPy/Numba. Each scoring request runs on a worker thread
  (``anyio.to_thread``) behind a ``CapacityLimiter`` of ``workers`` tokens, so the event loop keeps
  accepting and parsing requests while at most ``workers`` requests score at once; the others wait
  their turn in arrival order. About three quarters of a request's CPU holds the GIL (only the score
  and top-k kernels release it), so for parallel scoring ``mfrec serve --processes N`` runs N server
  processes (``app.app_from_environment``), each with the run loaded, behind ``balance.Dispatcher``,
  which hands each new connection to the process holding the fewest; ``tcp.NoDelayProtocol`` sets
  TCP_NODELAY on every connection.
- ``service.load_ranker``: the run that ranks lists under a request's ``rank_by`` (Inference.py's
  ``--rank-by``), chosen and loaded once at start; a request never names a run to load.
"""

from __future__ import annotations

from mfrec.errors import MfrecError

INSTALL_HINT = 'pip install -e ".[serve]"'


def require_extra() -> None:
    """Raise a one-sentence error naming the install command when the serve extra is missing."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "pydantic") if importlib.util.find_spec(m) is None]
    if missing:
        raise MfrecError(f"mfrec serve needs the optional serve extra ({', '.join(missing)} not installed): "
                         f"run {INSTALL_HINT}")


def create_app(experiment, **caps):
    """The FastAPI app serving ``experiment`` (a ``LoadedExperiment``, a run folder or a run name)."""
    require_extra()
    from mfrec.serve.app import create_app as _create

    return _create(experiment, **caps)


__all__ = ["INSTALL_HINT", "require_extra", "create_app"]
