"""Bearer tokens of the guarded routes: a route whose token is unset is off (404).

    require_token("admin_token", "admin endpoints")   RECSYS_ADMIN_TOKEN: /admin/...
    require_token("events_token", "POST /events")      RECSYS_EVENTS_TOKEN: /events

Tokens are compared in constant time; the message names the variable, never the token.
"""

# No `from __future__ import annotations`: the dependency's annotation names the closure's
# `bearer`, so it must be evaluated where it is written.

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recsys.service.errors import NotFound, Unauthorized
from recsys.service.settings import env_name


def require_token(setting: str, what: str) -> Callable[..., Awaitable[None]]:
    """A dependency: 404 while settings.<setting> is unset, 401 unless the request's bearer token is it."""
    env = env_name(setting)
    # One security scheme per token in the OpenAPI document, named for its variable.
    bearer = HTTPBearer(auto_error=False, scheme_name=env, description=env)

    async def require(request: Request,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        token = getattr(request.app.state.recsys.settings, setting)
        if token is None:
            raise NotFound(f"{what}: disabled (set {env} to enable)")
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, token.get_secret_value().encode()):
            raise Unauthorized(f"{what}: send the header `Authorization: Bearer <{env}>`")

    return require
