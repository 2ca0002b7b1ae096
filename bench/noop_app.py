"""The HTTP stack's ceiling: a FastAPI endpoint that does no model work.

    python -m bench.noop_app --port P

`POST /recommend` parses the service's own request model and answers a fixed 20-item response
of the service's own response model, under uvicorn's defaults (httptools where installed, one
process, no access log): what a request costs before the recommender does anything. The load
benchmark reports every configuration as a ratio to it.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from recsys.service.schemas import RecommendRequest, RecommendResponse, ScoredItem

ITEMS = 20


def app() -> FastAPI:
    answer = RecommendResponse(
        user_id="0", model_version="noop", objective="ctcvr",
        items=[ScoredItem(item_id=str(i), score=0.5 - i / 100, p_click=0.1, p_conversion=0.05, similarity=0.9)
               for i in range(ITEMS)])
    api = FastAPI()

    @api.post("/recommend", response_model=RecommendResponse, response_model_exclude_none=True)
    async def recommend(body: RecommendRequest) -> RecommendResponse:
        return answer.model_copy(update={"user_id": body.key()})

    @api.get("/readyz")
    async def readyz() -> dict:
        return {"status": "ready"}

    return api


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    uvicorn.run(app(), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
