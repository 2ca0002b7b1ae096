"""Error kinds and the one place that maps them to HTTP status codes.

Every error response is JSON: {"error": kind, "message": text[, "detail": [...]]}.
    ServiceError subclasses   HTTP-layer errors; each declares its kind, status and headers
    RequestError (domain.py)  what a request got wrong, raised by the recommender: DOMAIN_STATUS
    RequestValidationError    the request schema: 422 with one readable line
    any other exception       a bug: 500, answered by observability.RequestContext
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.service.domain import MAX_USER_ID_LENGTH, InvalidRequest, RequestError, UnknownUser
from recsys.service.user_features import VALUE_RULE

__all__ = ["InvalidRequest", "NotFound", "NotReady", "Overloaded", "PayloadTooLarge", "ReloadFailed", "ReloadInProgress",
           "RequestError", "ServiceError", "Unauthorized", "UnknownUser", "UnsupportedTransferCoding", "error_response", "install", "internal_error",
           "response_for"]

log = logging.getLogger("recsys.service")


class ServiceError(Exception):
    """An error the HTTP layer answers itself; every subclass declares its `kind` and `status`."""

    kind = "error"
    status = 500
    headers: dict[str, str] | None = None

    def __init__(self, message: str, detail: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        missing = [a for a in ("kind", "status") if a not in cls.__dict__]
        if missing:  # an inherited status would silently answer the parent's code
            raise TypeError(f"{cls.__name__} must declare {' and '.join(missing)}")


class PayloadTooLarge(ServiceError):
    kind, status = "payload_too_large", 413


class UnsupportedTransferCoding(ServiceError):
    """A Transfer-Encoding other than plain `chunked`: the body cannot be decoded (RFC 9112 6.1)."""
    kind, status = "not_implemented", 501


class Unauthorized(ServiceError):
    kind, status = "unauthorized", 401
    headers = {"WWW-Authenticate": "Bearer"}


class NotFound(ServiceError):
    """A route that exists but is switched off (the admin endpoints without a token)."""
    kind, status = "not_found", 404


class ReloadFailed(ServiceError):
    """The artifacts on disk could not replace the served version; it keeps serving."""
    kind, status = "reload_failed", 409


class ReloadInProgress(ServiceError):
    """Another reload is running; its outcome decides what serves (retry to load again after it)."""
    kind, status = "reload_in_progress", 409


class NotReady(ServiceError):
    """No model loaded yet, shutting down, or the batcher stopped; retry after a moment."""
    kind, status = "not_ready", 503
    headers = {"Retry-After": "1"}


class Overloaded(ServiceError):
    """More requests in flight or queued than the service takes, or an answer not computed in
    time; retry after a moment."""
    kind, status = "overloaded", 503
    headers = {"Retry-After": "1"}


# What a request got wrong (service/domain.py), by status. Looked up along the error's class
# hierarchy, and the base is mapped, so a new domain error is at worst a 422, never a 500.
DOMAIN_STATUS: dict[type[RequestError], int] = {RequestError: 422, UnknownUser: 404}


def status_of(exc: RequestError) -> int:
    return next(DOMAIN_STATUS[c] for c in type(exc).__mro__ if c in DOMAIN_STATUS)


def error_response(status: int, kind: str, message: str, detail: list[dict] | None = None,
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": kind, "message": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def response_for(exc: ServiceError | RequestError) -> JSONResponse:
    """The HTTP response of a service or request error; also used by middleware outside the routes."""
    if isinstance(exc, RequestError):
        return error_response(status_of(exc), exc.kind, exc.message, exc.detail)
    return error_response(exc.status, exc.kind, exc.message, exc.detail, headers=exc.headers)


def internal_error() -> JSONResponse:
    """The answer to a bug: no details leave the service (they are in its log)."""
    return error_response(500, "internal", "internal error; see the service log")


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
        return f"{field}: must be an integer or a string of 1-{MAX_USER_ID_LENGTH} printable characters"
    if union and len(prefix) == 2:
        return f"user_features.{prefix[1]}: {VALUE_RULE}"
    return f"{'.'.join(loc)}: {first['msg'].removeprefix('Value error, ')}"


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    @app.exception_handler(RequestError)
    async def service_error(_: Request, exc: ServiceError | RequestError):
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
    # Any other exception is a bug: observability.RequestContext, the outermost layer, logs it
    # with the request id and answers internal_error().
