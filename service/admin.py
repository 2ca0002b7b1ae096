"""Admin routes, behind a bearer token from RECSYS_ADMIN_TOKEN; off (404) without one.

    POST /admin/reload   load the version to serve now (ARTIFACTS/current, or the pinned one),
                         validate it and swap it in; 409 with the reason if it won't load,
                         409 at once while another reload runs; with several workers, the
                         others then reload too (in the background)

The handler is async and the load runs on a thread of its own: reloads never occupy the
event loop or the thread pool, so metrics and probes answer while a slow load runs.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from recsys.service.errors import NotFound, Unauthorized
from recsys.service.schemas import ErrorResponse

bearer = HTTPBearer(auto_error=False, description="RECSYS_ADMIN_TOKEN")


class ReloadResponse(BaseModel):
    status: str
    model_version: str
    previous_version: str | None


async def require_admin(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    token = request.app.state.recsys.settings.admin_token
    if token is None:
        raise NotFound("admin endpoints are disabled (set RECSYS_ADMIN_TOKEN to enable them)")
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, token.get_secret_value().encode()):
        raise Unauthorized("admin endpoints need the header `Authorization: Bearer <RECSYS_ADMIN_TOKEN>`")


async def in_own_thread(fn: Callable[[], object]):
    """`fn()` on a new thread, awaited; if the client leaves, it still runs to the end."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def settle(outcome: BaseException | None, result) -> None:
        if done.done():  # cancelled: nobody waits
            return
        if outcome is not None:
            done.set_exception(outcome)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - handed to the awaiting handler
            loop.call_soon_threadsafe(settle, e, None)
        else:
            loop.call_soon_threadsafe(settle, None, result)

    threading.Thread(target=run, name="admin-reload", daemon=True).start()
    return await done


def install(app: FastAPI) -> None:
    @app.post("/admin/reload", response_model=ReloadResponse, dependencies=[Depends(require_admin)], tags=["admin"],
              responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
                         409: {"model": ErrorResponse}})
    async def reload(request: Request) -> dict:
        """Load and validate the version to serve, then swap it in; the old one serves until then.

        With several workers the one that answers reloads here, and the others are signalled
        to reload in the background (their outcomes go to the log)."""
        state = request.app.state.recsys

        def run() -> dict:
            result = state.reload(wait=False)
            if state.after_admin_reload is not None:
                state.after_admin_reload()
            return result

        return await in_own_thread(run)
