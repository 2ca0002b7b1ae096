"""The page to explore recommendations, and what it needs from the service.

    GET /          the page (service/static/index.html): plain HTML/CSS/JS, no CDN, no build step
    GET /static/*  its assets, and the vendored Swagger UI of /docs
    GET /model     the served model's card (service/model_info.py), which the page's forms follow

The page itself only calls GET /model and POST /recommend, so it shows exactly what a
client of the API gets.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from recsys.service.model_info import ModelInfo, cached
from recsys.service.recommender import Recommender
from recsys.service.schemas import ErrorResponse

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, get_recommender: Callable[..., Recommender]) -> None:
    """Add the page, its assets and GET /model; `get_recommender` is the app's dependency for
    the served model (503 until one is loaded)."""
    # Annotations are evaluated here (no `from __future__ import annotations` in this module):
    # FastAPI must see this call's `get_recommender`, which is no module-level name.

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # A plain def: the first call after a load summarises the feature store, off the event loop.
    @app.get("/model", response_model=ModelInfo, tags=["operations"], responses={503: {"model": ErrorResponse}},
             summary="The served model: version, catalogue size, index format and user features")
    def model(rec: Annotated[Recommender, Depends(get_recommender)]) -> ModelInfo:
        return cached(rec)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
