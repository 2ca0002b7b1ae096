"""The FastAPI application.

The model loads in a background thread at start-up: /healthz answers at once, /readyz
turns 200 when the recommender is loaded, and /recommend answers 503 until then. Reloads
swap the recommender reference (service/state.py); /readyz turns 503 again once shutdown
starts. Middleware, outermost first: request id + access log + metrics, body limits,
backpressure on /recommend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import admin
from service.errors import InvalidRequest, NotReady, UnknownUser, install
from service.limits import Backpressure, BodyLimit
from service.observability import Metrics, RequestContext, annotate
from service.recommender import Recommender
from service.schemas import ErrorResponse, RecommendRequest, RecommendResponse, ScoredItem
from service.settings import Settings
from service.state import State, load_recommender

log = logging.getLogger("recsys.service")


def get_state(request: Request) -> State:
    return request.app.state.recsys


def get_recommender(state: Annotated[State, Depends(get_state)]) -> Recommender:
    rec = state.recommender  # read the reference once: a reload may swap it mid-request
    if rec is None:
        raise NotReady("model not loaded yet" if state.error is None else f"model failed to load: {state.error}")
    return rec


ERRORS = {422: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
          503: {"model": ErrorResponse}}


def _optional(values, i: int) -> float | None:
    return None if values is None else float(values[i])


def create_app(settings: Settings | None = None,
               load: Callable[[Settings], Recommender] = load_recommender) -> FastAPI:
    """The app; `load(settings)` builds the recommender (tests inject slow or failing ones)."""
    settings = settings or Settings()
    metrics = Metrics()
    state = State(settings, load, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=state.start, name="model-loader", daemon=True).start()
        yield
        state.draining = True

    app = FastAPI(title="recsys", summary="Two-tower CTR/CVR retrieval", lifespan=lifespan)
    app.state.recsys = state
    install(app)
    admin.install(app)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorResponse}})
    def readyz(state: Annotated[State, Depends(get_state)]) -> dict:
        if state.draining:
            raise NotReady("shutting down")
        rec = get_recommender(state)
        return {"status": "ready", "model_version": rec.version, "items": rec.item_count}

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/recommend", response_model=RecommendResponse, response_model_exclude_none=True, responses=ERRORS)
    def recommend(body: RecommendRequest, rec: Annotated[Recommender, Depends(get_recommender)]) -> RecommendResponse:
        annotate(user_id=body.key(), model_version=rec.version)
        if body.k > settings.max_k:
            raise InvalidRequest(f"k: must be at most {settings.max_k} (got {body.k})")
        try:
            out = rec.recommend(body.key(), body.k, body.objective, body.exclude_seen, body.user_features)
            metrics.batch_size.observe(1)  # one user per tower call until requests are batched
            metrics.overfetched.observe(out.overfetched)
        except UnknownUser:
            if settings.unknown_user_fallback != "popular":
                raise
            out = rec.popular(body.k)
        items = [ScoredItem(item_id=str(out.item_ids[i]), score=float(out.score[i]), p_click=_optional(out.p_click, i),
                            p_conversion=_optional(out.p_conversion, i), similarity=_optional(out.similarity, i))
                 for i in range(len(out.item_ids))]
        return RecommendResponse(user_id=body.key(), model_version=rec.version, objective=body.objective,
                                 items=items, fallback=out.fallback)

    # Added last = outermost: the context sees every response, including the limits' 413/503.
    app.add_middleware(Backpressure, paths=frozenset({"/recommend"}), max_in_flight=settings.max_in_flight,
                       max_queue=settings.max_queue, queue_timeout=settings.queue_timeout, metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth,
                       metrics=metrics)
    routes = frozenset(r.path for r in app.routes)
    app.add_middleware(RequestContext, metrics=metrics, routes=routes)
    return app
