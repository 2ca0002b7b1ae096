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

    def __init__(self, message: str, detail: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidRequest(ServiceError):
    kind = "invalid_request"


class PayloadTooLarge(ServiceError):
    kind = "payload_too_large"


class Unauthorized(ServiceError):
    kind = "unauthorized"


class NotFound(ServiceError):
    """A route that exists but is switched off (the admin endpoints without a token)."""
    kind = "not_found"


class UnknownUser(ServiceError):
    kind = "unknown_user"


class ReloadFailed(ServiceError):
    """The artifacts on disk could not replace the served version; it keeps serving."""
    kind = "reload_failed"


class NotReady(ServiceError):
    kind = "not_ready"


class Overloaded(ServiceError):
    """More requests in flight or queued than the service takes; retry after a moment."""
    kind = "overloaded"


STATUS = {InvalidRequest: 422, PayloadTooLarge: 413, Unauthorized: 401, NotFound: 404, UnknownUser: 404,
          ReloadFailed: 409, NotReady: 503, Overloaded: 503}
# Extra headers by status: when to come back, and how to authenticate.
HEADERS = {503: {"Retry-After": "1"}, 401: {"WWW-Authenticate": "Bearer"}}


def error_response(status: int, kind: str, message: str, detail: list[dict] | None = None,
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": kind, "message": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def response_for(exc: ServiceError) -> JSONResponse:
    """The HTTP response of a service error; also used by middleware outside the routes."""
    status = next(code for cls, code in STATUS.items() if isinstance(exc, cls))
    return error_response(status, exc.kind, exc.message, exc.detail, headers=HEADERS.get(status))


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
    # A feature value is a union too; its errors share the (user_features, name) prefix.
    prefix = loc[:2] if field == "user_features" else loc[:1]
    union = sum(1 for d in detail if [p for p in d["loc"] if p != "body"][:len(prefix)] == prefix) > 1
    if union and field == "user_id":
        return f"{field}: must be an integer or a string of 1-128 printable characters"
    if union and len(prefix) == 2:
        return (f"user_features.{prefix[1]}: must be a finite number, an integer or a string of at most "
                f"128 printable characters")
    return f"{'.'.join(loc)}: {first['msg'].removeprefix('Value error, ')}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError):
        return response_for(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        detail = _validation_detail(exc)
        return error_response(422, "invalid_request", _summary(detail), detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's "error parsing the body": invalid UTF-8, a number beyond Python's
            # digit limit, nesting beyond the parser's recursion limit. Same as bad JSON.
            return error_response(422, "invalid_request", "body is not valid JSON")
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the service log")
