"""The FastAPI application.

The model loads in a background thread at start-up: /healthz answers at once, /readyz
turns 200 when the recommender is loaded, and /recommend answers 503 until then. Reloads
swap the recommender reference (service/state.py); /readyz turns 503 again once shutdown
starts. Middleware, outermost first: request id + access log + metrics (and the JSON 500
of a bug), body limits, backpressure on /recommend. /recommend hands its query to the
micro-batcher (service/batcher.py), whose thread runs from start-up to shutdown (the
lifespan), and awaits its own answer, at most compute_timeout; the handlers are async, so no
request waits for a thread-pool slot.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recsys.service import admin, docs, events, pages
from recsys.service.batcher import Arrivals, BatcherStopped, MicroBatcher
from recsys.artifacts.host import limit_threads
from recsys.service.catalogue_follower import Follower
from recsys.service.domain import InvalidRequest, Objective, UnknownUser
from recsys.service.errors import NotReady, Overloaded, install
from recsys.service.limits import Admission, Backpressure, BodyLimit
from recsys.service.observability import Metrics, RequestContext, annotate
from recsys.service.recommender import Recommender, Scored
from recsys.service.schemas import ErrorResponse, RecommendRequest, RecommendResponse
from recsys.service.settings import Settings
from recsys.service.online_history import EventFollower, OnlineHistory
from recsys.service.state import Loader, State, load_recommender, open_catalogue, open_events

log = logging.getLogger("recsys.service")
BATCHER_STOPPED = "batcher stopped; restart the service"  # nothing restarts the thread but a new process


async def get_state(request: Request) -> State:
    return request.app.state.recsys


def serving(state: State) -> Recommender:
    rec = state.recommender  # read the reference once: a reload may swap it mid-request
    if rec is None:
        raise NotReady("model not loaded yet" if state.error is None else f"model failed to load: {state.error}")
    return rec


# Dependencies are async: a sync one would cost each request a hop through the thread pool.
async def get_recommender(state: Annotated[State, Depends(get_state)]) -> Recommender:
    return serving(state)


ERRORS = {422: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
          503: {"model": ErrorResponse}}


def recommend_response(user_id: str, version: str, objective: Objective, out: Scored) -> Response:
    """The RecommendResponse body, built as plain JSON: the same document as the pydantic model
    with None fields left out, without constructing and re-validating 20-100 models per request.
    orjson encodes a 20-item answer ~10x faster than the standard library (scores are finite:
    the recommender never scores a non-finite vector)."""
    columns = {"item_id": [str(i) for i in out.item_ids.tolist()], "score": out.score.tolist()}
    for name, values in (("p_click", out.p_click), ("p_conversion", out.p_conversion),
                         ("similarity", out.similarity)):
        if values is not None:
            columns[name] = values.tolist()
    names = list(columns)
    items = [dict(zip(names, row)) for row in zip(*columns.values())]
    if out.attributes is not None:
        for item, attributes in zip(items, out.attributes):
            item["attributes"] = attributes
    body = {"user_id": user_id, "model_version": version, "objective": objective.value, "items": items}
    if out.fallback is not None:
        body["fallback"] = out.fallback
    if out.recent_items_ignored:
        body["recent_items_ignored"] = out.recent_items_ignored
    return Response(orjson.dumps(body), media_type="application/json")


def create_app(settings: Settings | None = None, load: Loader = load_recommender) -> FastAPI:
    """The app; `load(settings, version)` builds the recommender (tests inject slow or failing ones)."""
    settings = settings or Settings()
    metrics = Metrics()
    state = State(settings, load, metrics)
    metrics.watch_filters(lambda: state.recommender.subsets if state.recommender is not None else None)

    arrivals = Arrivals()
    batcher = MicroBatcher(lambda rec, queries: rec.recommend_batch(queries), max_batch=settings.batch_size,
                           max_delay=settings.batch_delay_ms / 1000, arrivals=arrivals,
                           on_batch=metrics.batch_size.observe,
                           on_start=lambda: limit_threads(settings.model_threads))

    def applied(rec: Recommender, changes: list) -> None:
        for c in changes:
            metrics.catalogue_changes.labels(op=c.op).inc()
        if rec is state.recommender:
            metrics.catalogue(rec.item_count, len(rec.catalogue.unavailable))

    store = open_catalogue(settings)
    follower = None if store is None else Follower(store, lambda: state.recommender, batcher.call,
                                                   settings.catalogue_poll_ms / 1000, applied)
    app_state = {"store": store, "follower": follower}

    # This worker's online histories, fed from the event log; every recommender it loads uses them.
    history = OnlineHistory(settings.online_history_length, settings.online_history_max_age_s,
                            settings.online_history_users)
    state.online_history = history
    event_log = open_events(settings)
    event_follower = None if event_log is None else EventFollower(
        event_log, history, settings.events_poll_ms / 1000, lambda seq: metrics.events_read(seq, len(history)))
    events_state = {"log": event_log, "follower": event_follower, "accepted": metrics.events_accepted.inc}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        threading.Thread(target=state.start, name="model-loader", daemon=True).start()
        if follower is not None:
            follower.start()
        if event_follower is not None:
            event_follower.start()
        try:
            yield
        finally:
            state.draining = True
            if follower is not None:
                follower.stop()
            if event_follower is not None:
                event_follower.stop()
            batcher.close()

    # docs_url/redoc_url off: their default pages load scripts from a CDN (service/docs.py serves /docs).
    app = FastAPI(title="recsys", summary="Two-tower CTR/CVR retrieval", lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    app.state.recsys = state
    # Shared with the HTTP protocol (service/shedding.py), which refuses early while it is full.
    app.state.admission = admission = Admission(settings.max_in_flight + settings.max_queue)
    app.state.catalogue = app_state
    app.state.events = events_state
    install(app)
    admin.install(app)
    events.install(app)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorResponse}})
    async def readyz(state: Annotated[State, Depends(get_state)]) -> dict:
        if state.draining:
            raise NotReady("shutting down")
        rec = serving(state)
        if not batcher.alive:  # requests would get 503: say so before a load balancer routes them here
            raise NotReady(BATCHER_STOPPED)
        return {"status": "ready", "model_version": rec.version, "items": rec.item_count}

    # HEAD too: some load balancers probe with it (the same handlers; one operation each in the
    # OpenAPI document, which allows no two with one id).
    for path, probe in (("/healthz", healthz), ("/readyz", readyz)):
        app.add_api_route(path, probe, methods=["HEAD"], include_in_schema=False)

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    async def prometheus() -> Response:  # async: never queued behind thread-pool work
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/recommend", response_model=RecommendResponse, response_model_exclude_none=True, responses=ERRORS)
    async def recommend(body: RecommendRequest, rec: Annotated[Recommender, Depends(get_recommender)],
                        request: Request) -> Response:
        annotate(user_id=body.key(), model_version=rec.version)
        arrivals.arrive(request.scope)  # from here on the batcher need not wait for this one
        if body.k > settings.max_k:
            raise InvalidRequest(f"k: must be at most {settings.max_k} (got {body.k})")
        try:
            out = await batcher.submit(rec, body.query(), settings.compute_timeout)  # this query's own error
            metrics.overfetched.observe(out.overfetched)
        except BatcherStopped:
            raise NotReady(BATCHER_STOPPED) from None
        except TimeoutError:
            raise Overloaded(f"overloaded: no answer computed within {settings.compute_timeout:g} s; "
                             "retry later") from None
        except UnknownUser:
            if settings.unknown_user_fallback != "popular":
                raise
            out = rec.popular(body.k, body.query())
        return recommend_response(body.key(), rec.version, body.objective, out)

    pages.install(app, get_recommender)
    docs.install(app)  # after every route: it tags them and fills the schema's examples

    # Added last = outermost: the context sees every response, including the limits' 413/503.
    app.add_middleware(Backpressure, paths=frozenset({"/recommend"}), max_in_flight=settings.max_in_flight,
                       max_queue=settings.max_queue, queue_timeout=settings.queue_timeout, metrics=metrics,
                       arrivals=arrivals, admission=admission)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       metrics=metrics, per_path={"/admin/items": settings.max_admin_body_bytes,
                                                         "/events": settings.max_events_body_bytes})
    routes = frozenset(r.path for r in app.routes)
    app.add_middleware(RequestContext, metrics=metrics, routes=routes)
    return app
