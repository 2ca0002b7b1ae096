"""The FastAPI application.

The model loads in a background thread at start-up: /healthz answers at once, /readyz
turns 200 when the recommender is loaded, and /recommend answers 503 until then.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from artifacts import store
from service.errors import InvalidRequest, NotReady, install
from service.recommender import Recommender
from service.schemas import ErrorResponse, RecommendRequest, RecommendResponse, ScoredItem
from service.settings import Settings

log = logging.getLogger("recsys.service")


class State:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.recommender: Recommender | None = None
        self.error: str | None = None

    def load(self) -> None:
        s = self.settings
        try:
            version_dir = store.resolve(s.artifacts, s.version, need_index=True)
            rec = Recommender(version_dir, candidates=s.candidates, nprobe=s.nprobe, ef_search=s.ef_search)
            rec.smoke_test()
            self.recommender = rec
            log.info("serving model version %s (%d users, %d items)", rec.version, len(rec.users), len(rec.searcher))
        except Exception as e:  # noqa: BLE001 - reported through /readyz and the log
            self.error = f"{type(e).__name__}: {e}"
            log.error("model failed to load: %s", self.error)


def get_state(request: Request) -> State:
    return request.app.state.recsys


def get_recommender(state: Annotated[State, Depends(get_state)]) -> Recommender:
    if state.recommender is None:
        raise NotReady("model not loaded yet" if state.error is None else f"model failed to load: {state.error}")
    return state.recommender


ERRORS = {422: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = State(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=state.load, name="model-loader", daemon=True).start()
        yield

    app = FastAPI(title="recsys", summary="Two-tower CTR/CVR retrieval", lifespan=lifespan)
    app.state.recsys = state
    install(app)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorResponse}})
    def readyz(state: Annotated[State, Depends(get_state)]) -> dict:
        rec = get_recommender(state)
        return {"status": "ready", "model_version": rec.version, "items": len(rec.searcher)}

    @app.post("/recommend", response_model=RecommendResponse, responses=ERRORS)
    def recommend(body: RecommendRequest, rec: Annotated[Recommender, Depends(get_recommender)]) -> RecommendResponse:
        if body.k > settings.max_k:
            raise InvalidRequest(f"k: must be at most {settings.max_k} (got {body.k})")
        out = rec.recommend(body.key(), body.k, body.objective, body.exclude_seen)
        items = [ScoredItem(item_id=str(i), score=float(s), p_click=float(c), p_conversion=float(v), similarity=float(m))
                 for i, s, c, v, m in zip(out.item_ids, out.score, out.p_click, out.p_conversion, out.similarity)]
        return RecommendResponse(user_id=body.key(), model_version=rec.version, objective=body.objective, items=items)

    return app
