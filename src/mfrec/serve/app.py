"""The FastAPI application: routers per resource, one error handler, a body-size limit, the page.

Routes (all JSON unless said):

    GET  /                                      the page (static/index.html)
    GET  /static/{file}                         its CSS and JavaScript (read into memory at start)
    GET  /api/v1/docs                           the OpenAPI page (HTML, built from /api/v1/openapi.json)
    GET  /api/v1/health                         {"status": "ok", "run": ...}
    GET  /api/v1/model                          run, model, dataset, metrics, genres, caps
    GET  /api/v1/movies/search?q=&limit=        forgiving title search
    GET  /api/v1/movies/popular?top=&genre=...  most-rated movies (to rate first)
    GET  /api/v1/movies/similar?movie=&top=...  nearest movies by cosine of the movie factors
    POST /api/v1/recommendations                a made-up user: {"ratings": [{"movie", "rating"}], ...}
    GET  /api/v1/users/{id}/recommendations     an existing user
    GET  /api/v1/groups/recommendations?users=  a pair or group of existing users (least misery)

Errors are ``{"error": "one sentence", "status": N, "suggestions": [...]}`` with a 4xx status.
"""

from __future__ import annotations

import functools
import html
import gc
import json
import logging
import os
from contextlib import asynccontextmanager
from importlib import resources
from typing import Literal, Optional

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mfrec.errors import DataError, MfrecError, ModelError, UnknownIdError
from mfrec.inference.defaults import DEFAULTS
from mfrec.serve.schemas import (LOWER_BOUND_HELP, RANK_BY_HELP, ErrorBody, Health, MadeUpUserRequest, ModelInfo,
                                 RecommendationList, SearchResult)
from mfrec.serve.service import Caps, RequestError, Service, load_ranker

API = "/api/v1"
log = logging.getLogger("mfrec.serve")
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
# the page loads nothing from elsewhere: no CDN, no inline script
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
ERRORS = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody},
          413: {"model": ErrorBody}, 422: {"model": ErrorBody}}


def create_app(experiment, caps: Caps | None = None, **settings) -> FastAPI:
    """The app for a ``Service``, a ``LoadedExperiment``, or a run folder/name (loaded now, once).

    ``settings`` are ``Caps`` fields (``max_top=50``, ``workers=2``, ...)."""
    if isinstance(experiment, Service):
        service = experiment
    else:
        if not hasattr(experiment, "recommender"):
            from mfrec.inference import open_run

            experiment = open_run(experiment)[0]
        service = Service(experiment, caps or Caps(**settings))
    static = _read_static()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # at most `workers` requests score at once, each on a worker thread; the rest wait in order
        app.state.limiter = anyio.CapacityLimiter(service.caps.workers)
        await anyio.to_thread.run_sync(_warm_up, service)  # compile/load the kernels before the first request
        # the loaded run (titles, tables, indexes) lives as long as the server: move it out of the
        # cyclic collector's generations, so a full collection during a request does not walk it
        gc.collect()
        gc.freeze()
        yield

    app = FastAPI(title="mfrec", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=f"{API}/openapi.json",
                  description=f"Recommendations from run {service.exp.name} ({service.kind}, dataset "
                              f"{service.rec.dataset.name}). Errors are 4xx with a JSON body "
                              f"{{\"error\": one sentence, \"status\", \"suggestions\"}}.")
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=service.caps.max_body_bytes)
    _error_handlers(app)
    app.include_router(_meta_router(), prefix=API)
    app.include_router(_movies_router(), prefix=f"{API}/movies")
    app.include_router(_recommendations_router(), prefix=API)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return Response(static["index.html"][0], media_type=static["index.html"][1], headers=PAGE_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in static:  # a name, never a path: the files were read into memory at start
            raise StarletteHTTPException(404, f"no static file {name!r}")
        body, media = static[name]
        return Response(body, media_type=media, headers=PAGE_HEADERS)

    @app.get(f"{API}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()), headers=PAGE_HEADERS)

    return app


SETTINGS_ENV = "MFREC_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one of several server processes (``mfrec serve --processes N``): each loads the run
    named by the JSON in ``$MFREC_SERVE_SETTINGS`` ({"run": folder, "caps": {...}, "rank_by": the ranking
    run's folder or "none", "runs_root": folder}) for itself."""
    from mfrec.inference.api import load_experiment

    settings = json.loads(os.environ[SETTINGS_ENV])
    exp = load_experiment(settings["run"])
    ranker, note, _ = load_ranker(exp, settings.get("rank_by", "none"), settings.get("runs_root", "Experiments_"))
    return create_app(Service(exp, Caps(**settings["caps"]), ranker, note))


def _read_static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("mfrec.serve") / "static"
    out = {}
    for f in folder.iterdir():
        suffix = "." + f.name.rsplit(".", 1)[-1]
        if f.is_file() and suffix in STATIC_TYPES:
            out[f.name] = (f.read_bytes(), STATIC_TYPES[suffix])
    if "index.html" not in out:
        raise MfrecError(f"the page is missing from the package ({folder}/index.html): reinstall mfrec")
    return out


def _warm_up(service: Service) -> None:
    """One request of each kind the run answers, so the first real request does not pay for compiling."""
    titles = service.rec.titles_list
    if not titles:
        return
    first = str(service.rec.movie_id_array[int(service.rec.popularity.argmax())])
    try:
        if "like" in service.supports():
            service.recommend([(first, service.rec.scale[1])], top=1, min_ratings=0)
        if "similar" in service.supports():
            service.similar(first, top=1, min_ratings=0)
        service.popular(top=1)
    except MfrecError as e:  # a warm-up that fails leaves the requests to say why
        log.warning("warm-up request failed: %s", e)


def get_service(request: Request) -> Service:
    return request.app.state.service


async def scored(request: Request, fn, /, *args, **kwargs):
    """Run ``fn`` (CPU-bound NumPy/Numba scoring) on a worker thread, at most ``workers`` at once."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=request.app.state.limiter)


def _top(default: int = DEFAULTS.top):
    return Query(default, description="How many movies to list (at most the server's max_top).")


def _genre():
    return Query(None, description="Only movies of this genre; repeat for any of several (genre=Comedy&genre=Drama).")


def _years():
    return Query(None, description="Only movies from these years: 1995, 1990-1999, 1990- or -1980.")


def _min_ratings(default: int = DEFAULTS.min_ratings):
    return Query(default, description="Only movies with at least this many training ratings.")


def _exclude():
    return Query(DEFAULTS.exclude, description="Leave out the movies the user rated in any split (all) or in training (train).")


def _genres(genre: Optional[list[str]]) -> list[str]:
    return [g for g in (genre or []) if g.strip()]


# -- routers --------------------------------------------------------------------------------------
def _meta_router() -> APIRouter:
    r = APIRouter(tags=["model"])

    @r.get("/health", response_model=Health, summary="Is the server up, and which run it serves")
    async def health(service: Service = Depends(get_service)):
        return {"status": "ok", "run": service.exp.name, "process": os.getpid()}

    @r.get("/model", response_model=ModelInfo, summary="The run: model, dataset, metrics, genres, caps")
    async def model(service: Service = Depends(get_service)):
        return service.info()

    return r


def _movies_router() -> APIRouter:
    r = APIRouter(tags=["movies"], responses=ERRORS)

    @r.get("/search", response_model=SearchResult, summary="Find movies by title, as forgiving as the command line")
    async def search(request: Request, q: str = Query(..., description="A title or part of one; typos get the closest titles."),
                     limit: int = Query(10, description="How many movies (at most max_search)."),
                     service: Service = Depends(get_service)):
        return await scored(request, service.search, q, limit)  # a typo scans every title (rapidfuzz)

    @r.get("/popular", response_model=RecommendationList, summary="The most-rated movies, to rate first")
    async def popular(request: Request, top: int = _top(), genre: Optional[list[str]] = _genre(),
                      years: Optional[str] = _years(), min_ratings: int = _min_ratings(0),
                      exclude: Optional[list[str]] = Query(None, description="Titles or movieIds to leave out."),
                      service: Service = Depends(get_service)):
        return await scored(request, service.popular, top, _genres(genre), years, min_ratings, exclude or [])

    @r.get("/similar", response_model=RecommendationList, summary="Movies nearest to one movie")
    async def similar(request: Request, movie: str = Query(..., description="A title or movieId."),
                      top: int = _top(), genre: Optional[list[str]] = _genre(),
                      years: Optional[str] = _years(), min_ratings: int = _min_ratings(),
                      service: Service = Depends(get_service)):
        return await scored(request, service.similar, movie, top, _genres(genre), years, min_ratings)

    return r


def _recommendations_router() -> APIRouter:
    r = APIRouter(tags=["recommendations"], responses=ERRORS)

    @r.post("/recommendations", response_model=RecommendationList, summary="Recommend for a made-up user's ratings")
    async def made_up_user(request: Request, body: MadeUpUserRequest, service: Service = Depends(get_service)):
        return await scored(request, service.recommend, [(x.movie, x.rating) for x in body.ratings], body.top,
                            body.genres, body.years, body.min_ratings, body.explain, body.dislikes, body.rank_by,
                            body.lower_bound)

    @r.get("/users/{user_id}/recommendations", response_model=RecommendationList,
           summary="Recommend for an existing user (original userId)")
    async def user(request: Request, user_id: str, top: int = _top(), genre: Optional[list[str]] = _genre(),
                   years: Optional[str] = _years(), min_ratings: int = _min_ratings(),
                   explain: bool = Query(False, description="Add each movie's per-rating contribution lines (details)."),
                   exclude: Literal["all", "train"] = _exclude(),
                   rank_by: str = Query("auto", max_length=200, description=RANK_BY_HELP),
                   lower_bound: float = Query(0.0, description=LOWER_BOUND_HELP),
                   service: Service = Depends(get_service)):
        return await scored(request, service.recommend_user, user_id, top, _genres(genre), years, min_ratings,
                            explain, exclude, rank_by, lower_bound)

    @r.get("/groups/recommendations", response_model=RecommendationList,
           summary="One list for a pair or group of existing users (least misery)")
    async def group(request: Request, users: str = Query(..., description="User ids separated by commas: 12,345."),
                    top: int = _top(), genre: Optional[list[str]] = _genre(), years: Optional[str] = _years(),
                    min_ratings: int = _min_ratings(), exclude: Literal["all", "train"] = _exclude(),
                    service: Service = Depends(get_service)):
        return await scored(request, service.recommend_group, users.split(","), top, _genres(genre), years,
                            min_ratings, exclude)

    return r


# -- errors ---------------------------------------------------------------------------------------
def error(status: int, message: str, suggestions=()) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, "suggestions": list(suggestions)}, status_code=status)


def _status_of(e: MfrecError) -> int:
    from mfrec.inference.titles import AmbiguousTitleError

    if isinstance(e, RequestError):
        return e.status
    if isinstance(e, AmbiguousTitleError):
        return 409
    if isinstance(e, UnknownIdError):
        return 404
    if isinstance(e, ModelError):
        return 400
    return 422 if isinstance(e, DataError) else 400


def _validation_sentence(errors) -> tuple[int, str]:
    """One sentence for pydantic's list of validation errors (the first one, and how many more)."""
    first = errors[0] if errors else {"type": "", "loc": (), "msg": "the request is not valid"}
    if first.get("type") == "json_invalid":
        where = first.get("ctx", {}).get("error", "")
        return 400, f"the request body is not valid JSON ({where})" if where else "the request body is not valid JSON"
    errors = _merge_union_errors(errors)
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc) if loc else "the request body"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    msg = str(first.get("msg", "is not valid"))
    msg = msg[0].lower() + msg[1:] if msg else msg
    if first.get("type") == "missing":
        return 422, f"{where} is required{more}"
    if first.get("type") == "extra_forbidden":
        return 422, f"{where} is not a field this endpoint knows{more}"
    return 422, f"{where}: {msg}, got {_short(first.get('input'))}{more}"


UNION_BRANCHES = {"int": "a whole number (a movieId)", "str": "text (a title)", "float": "a number"}


def _merge_union_errors(errors) -> list[dict]:
    """pydantic reports a value that fits no branch of ``int | str`` once per branch (loc ending in
    "int", then "str"): one error instead, "should be a whole number (a movieId) or text (a title)"."""
    out: list[dict] = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        if loc and loc[-1] in UNION_BRANCHES:
            prev = out[-1] if out else None
            if prev is not None and prev.get("_union") == loc[:-1]:
                prev["msg"] += f" or {UNION_BRANCHES[loc[-1]]}"
                continue
            out.append({**e, "loc": loc[:-1], "_union": loc[:-1], "type": "union",
                        "msg": f"should be {UNION_BRANCHES[loc[-1]]}"})
        else:
            out.append(e)
    return out


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MfrecError)
    async def mfrec_error(request: Request, e: MfrecError):
        return error(_status_of(e), str(e), getattr(e, "suggestions", ()))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return error(*_validation_sentence(e.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        if e.status_code == 404 and e.detail == "Not Found":
            return error(404, f"there is nothing at {request.url.path}: the API is under {API}/ (see {API}/docs)")
        if e.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}")
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception):  # a bug: logged here, one line for the client
        log.exception("internal error answering %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(e).__name__}); the server log has the details")


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before the app parses it
    (by Content-Length, or by counting the chunks of a body sent without one)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                return await self._refuse(send, 400, "the Content-Length header is not a number")
            if too_big:
                return await self._refuse(send, 413, self._message(int(length)))
            return await self.app(scope, receive, send)
        # no Content-Length (a chunked body): read it here, up to the limit, then hand it on whole
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = message.get("more_body", False)
            if seen > self.max_bytes:
                return await self._refuse(send, 413, self._message(seen, "at least "))
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect as the app expects
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _message(self, n: int, qualifier: str = "") -> str:
        return f"the request body is {qualifier}{n} bytes, more than this server's limit of {self.max_bytes} bytes"

    @staticmethod
    async def _refuse(send, status: int, message: str) -> None:
        body = json.dumps({"error": message, "status": status, "suggestions": []}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# -- the OpenAPI page -----------------------------------------------------------------------------
def _docs_page(spec: dict) -> str:
    """The OpenAPI document as one readable HTML page (no Swagger UI: that would load from a CDN)."""
    e = html.escape
    rows = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            params = "".join(
                f"<li><code>{e(p['name'])}</code> ({e(p['in'])}{', required' if p.get('required') else ''})"
                f"{' — ' + e(p.get('description', '')) if p.get('description') else ''}</li>"
                for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            body_ref = body.get("$ref", "").rsplit("/", 1)[-1]
            ok = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ok_ref = ok.get("$ref", "").rsplit("/", 1)[-1]
            rows.append(
                f"<section><h3><span class='m {method}'>{method.upper()}</span> <code>{e(path)}</code></h3>"
                f"<p>{e(op.get('summary', ''))}</p>"
                + (f"<ul>{params}</ul>" if params else "")
                + (f"<p>Body: <a href='#{e(body_ref)}'>{e(body_ref)}</a></p>" if body_ref else "")
                + (f"<p>Answer: <a href='#{e(ok_ref)}'>{e(ok_ref)}</a></p>" if ok_ref else "")
                + "</section>")
    schemas = []
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        fields = "".join(
            f"<tr><td><code>{e(f)}</code>{' *' if f in schema.get('required', []) else ''}</td>"
            f"<td>{e(_type_of(s))}</td><td>{e(s.get('description', ''))}</td></tr>"
            for f, s in schema.get("properties", {}).items())
        schemas.append(f"<section id='{e(name)}'><h3>{e(name)}</h3><table>{fields}</table></section>")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>mfrec API</title>
<link rel="stylesheet" href="/static/app.css"></head><body class="docs"><main>
<h1>mfrec API <small>v1</small></h1><p>{e(spec.get('info', {}).get('description', ''))}</p>
<p>The machine-readable document: <a href="{API}/openapi.json">{API}/openapi.json</a>. Fields marked * are required.</p>
<h2>Endpoints</h2>{''.join(rows)}<h2>Schemas</h2>{''.join(schemas)}</main></body></html>"""


def _type_of(s: dict) -> str:
    if "$ref" in s:
        return s["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in s:
        return " or ".join(_type_of(x) for x in s["anyOf"])
    if s.get("type") == "array":
        return f"list of {_type_of(s.get('items', {}))}"
    return str(s.get("type", "any"))
