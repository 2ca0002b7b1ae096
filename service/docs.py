"""API docs that work offline and fit the served model.

    GET /docs          Swagger UI from the package's own copy (service/static/swagger-ui/), no CDN
    GET /openapi.json  the schema, its examples taken from the served model

FastAPI's examples are fixed when the code is written, so "Try it out" on a model trained
on other data would send feature names it does not have (a 422). Here the request examples
are rebuilt whenever the served model changes: a real user id, and a new user described by
this model's own user features. Error examples are produced by the service's own error
types, so they are the bodies it really sends.
"""

from __future__ import annotations

import copy
import json
import threading
import weakref

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from recsys.service.domain import Query, RequestError, UnknownUser
from recsys.service.errors import NotReady, ServiceError, response_for
from recsys.service.model_info import cached, example_features
from recsys.service.recommender import Recommender

ASSETS = "/static/swagger-ui"
TAGS = [
    {"name": "recommend", "description": "Top-k items for a user, scored by the CTR/CVR heads."},
    {"name": "operations", "description": "Health, readiness, metrics and the served model."},
    {"name": "admin", "description": "Model reloads; behind RECSYS_ADMIN_TOKEN, off without it."},
    {"name": "events", "description": "Users' clicks and conversions: the online histories and the next "
                                      "training run; behind RECSYS_EVENTS_TOKEN, off without it."},
]
DESCRIPTION = ("The page at [/](/) explores recommendations in a browser; `GET /model` describes the served "
               "model, whose user features a new user is described by.")
# What /docs says of each route, where the route itself gives no summary.
SUMMARIES = {"/recommend": "Top-k items for a known or a new user",
             "/healthz": "Alive: answers as soon as the process runs",
             "/readyz": "Ready: the model and index are loaded (503 until then and while shutting down)",
             "/metrics": "Prometheus metrics",
             "/events": "Log users' clicks and conversions"}
RECOMMEND_DESCRIPTION = """\
The user tower embeds the user (a known user from the feature store, or a new one from
`user_features`), the index returns the nearest candidates by inner product, and the CTR and
CVR heads re-score them; the `k` best by `objective` come back, best first.

- `objective`: `ctcvr` (p_click × p_conversion, expected conversions per exposure, the default),
  `ctr` (p_click), `cvr` (p_conversion given a click) or `similarity` (the retrieval order).
- `exclude_seen`: leave out the items the user interacted with in the training data.
- `user_features`: a user the store does not know, described by every user-tower feature
  except `user_id` (GET /model lists them with their known values). A known user's stored
  features win over any sent.

Errors are JSON `{"error", "message"[, "detail"]}`: 422 for an invalid body, 404 for an
unknown user without `user_features`, 413 for a body too large, 503 (with Retry-After) until
the model is loaded or when the service is overloaded."""
# An invalid body, as the validation handler answers it (checked against a live server in the tests).
INVALID_K = {"error": "invalid_request", "message": "k: Input should be greater than or equal to 1",
             "detail": [{"loc": ["body", "k"], "msg": "Input should be greater than or equal to 1",
                         "type": "greater_than_equal"}]}
NOT_LOADED = NotReady("model not loaded yet")


def _describe(route: APIRoute) -> None:
    """Every route under one of TAGS, with a summary; /recommend described at length."""
    if not route.tags:
        kind = "recommend" if route.path == "/recommend" else "admin" if route.path.startswith("/admin") else None
        route.tags = [kind or "operations"]
    route.summary = route.summary or SUMMARIES.get(route.path)
    if route.path == "/recommend":
        route.description = route.description or RECOMMEND_DESCRIPTION


def _body(exc: ServiceError | RequestError) -> dict:
    return json.loads(response_for(exc).body)


def _example(summary: str, value) -> dict:
    return {"summary": summary, "value": value}


def _unknown_user(rec: Recommender) -> tuple[str, dict]:
    """An id the served model does not know, and the 404 body the service answers for it."""
    uid = "new-user"
    while True:
        _, [error], _ = rec.user_vectors([Query(uid, 1)])
        if isinstance(error, UnknownUser):
            return uid, _body(error)
        uid += "-1"


def _model_examples(rec: Recommender) -> tuple[dict, dict, dict]:
    """Request, 404 and 422 examples from the served model."""
    info = cached(rec)
    features = example_features(info)
    new_user, not_found = _unknown_user(rec)
    requests = {"new_user": _example("A new user, described by this model's user features",
                                     {"user_id": new_user, "k": 10, "user_features": features})}
    if info.sample_users:
        requests = {"known_user": _example("A known user", {"user_id": info.sample_users[0], "k": 10}),
                    "by_click": _example("The same user, ranked by click probability, seen items left out",
                                         {"user_id": info.sample_users[0], "k": 10, "objective": "ctr",
                                          "exclude_seen": True}),
                    **requests}
    if rec.history_length:
        session = [str(i) for i in rec.searcher.item_ids[rec.popular_rows[:3]].tolist()]
        requests["session"] = _example("A new user known only by the items clicked in this session",
                                       {"user_id": new_user, "k": 10, "recent_items": session})
    unknown = {"unknown_user": _example(f"POST {json.dumps({'user_id': new_user, 'k': 10})}", not_found)}
    invalid = {}
    try:
        rec.cold_start_columns({**features, "colour": "red"})
    except RequestError as e:
        invalid["unknown_feature"] = _example("A user feature this model does not have", _body(e))
    return requests, unknown, invalid


def _fill(schema: dict, rec: Recommender | None, unknown_is_404: bool = True) -> dict:
    """A copy of `schema` with examples: the model's where one is served, generic ones otherwise.
    `unknown_is_404`: false when unknown users get the popular fallback instead."""
    schema = copy.deepcopy(schema)
    op = schema["paths"]["/recommend"]["post"]
    requests, unknown, invalid = _model_examples(rec) if rec is not None else ({}, {}, {})
    unknown = unknown if unknown_is_404 else {}
    invalid = {"k_too_small": _example('POST {"user_id": 1, "k": 0}', INVALID_K), **invalid}
    if requests:
        op["requestBody"]["content"]["application/json"]["examples"] = requests
        props = schema["components"]["schemas"]["RecommendRequest"]["properties"]
        first = next(iter(requests.values()))["value"]
        props["user_id"]["examples"] = [first["user_id"]]
        props["user_features"]["examples"] = [requests["new_user"]["value"]["user_features"]]
    for status, examples in (("404", unknown), ("422", invalid),
                             ("503", {"not_ready": _example("Before the model is loaded", _body(NOT_LOADED))})):
        if examples and status in op["responses"]:
            op["responses"][status]["content"]["application/json"]["examples"] = examples
    return schema


def install(app: FastAPI) -> None:
    """Serve /docs from the package and examples that fit the served model.

    The app must be created with docs_url=None and redoc_url=None (their default pages load
    their scripts from a CDN). Call after every route is added."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            _describe(route)
    base: dict | None = None  # the schema without examples: routes only, built once
    model, schema = (lambda: None), None  # the schema with examples, and the model they came from
    lock = threading.Lock()

    def openapi() -> dict:
        nonlocal base, model, schema
        rec = app.state.recsys.recommender
        with lock:
            if base is None:
                base = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                   description=app.description or DESCRIPTION, routes=app.routes, tags=TAGS)
            if schema is None or model() is not rec:  # a weak reference: a reload frees the old model
                unknown_is_404 = app.state.recsys.settings.unknown_user_fallback != "popular"
                schema = _fill(base, rec, unknown_is_404)
                model = weakref.ref(rec) if rec is not None else (lambda: None)
            return schema

    app.openapi = openapi

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
                                   # No badge asking an online validator about the schema.
                                   swagger_ui_parameters={"validatorUrl": None})
