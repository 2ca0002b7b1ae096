"""Error kinds and the one place that maps them to HTTP status codes.

Every error response is JSON: {"error": kind, "message": text[, "detail": [...]]}.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("recsys.service")


class ServiceError(Exception):
    kind = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    kind = "invalid_request"


class UnknownUser(ServiceError):
    kind = "unknown_user"


class NotReady(ServiceError):
    kind = "not_ready"


STATUS = {InvalidRequest: 422, UnknownUser: 404, NotReady: 503}


def error_response(status: int, kind: str, message: str, detail: list[dict] | None = None,
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": kind, "message": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list[dict]:
    # Keep only JSON-safe fields: `input` and `ctx` may hold arbitrary client data.
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()]


def _summary(detail: list[dict]) -> str:
    """One readable line for the first invalid field."""
    if not detail:
        return "invalid request"
    first = detail[0]
    loc = [p for p in first["loc"] if p != "body"]
    if first["type"] == "json_invalid":
        return "body is not valid JSON"
    if not loc:
        return "body must be a JSON object (send Content-Type: application/json)"
    field = loc[0]
    # A union (user_id: int | str) reports one error per member; say what is accepted instead.
    if sum(1 for d in detail if [p for p in d["loc"] if p != "body"][:1] == [field]) > 1:
        return f"{field}: must be an integer or a string of 1-128 printable characters"
    return f"{field}: {first['msg']}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError):
        status = next(code for cls, code in STATUS.items() if isinstance(exc, cls))
        headers = {"Retry-After": "1"} if status == 503 else None
        return error_response(status, exc.kind, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        detail = _validation_detail(exc)
        return error_response(422, "invalid_request", _summary(detail), detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the service log")
