"""Admin routes, behind a bearer token from RECSYS_ADMIN_TOKEN; off (404) without one.

    POST /admin/reload   load the version to serve now (ARTIFACTS/current, or the pinned one),
                         validate it and swap it in; 409 with the reason if it won't load,
                         409 at once while another reload runs; with several workers, the
                         others then reload too (in the background)
    POST /admin/items    a batch of catalogue changes, validated whole, then written to the
                         store in one transaction; answers once this worker serves them
    GET  /admin/items/ID an item's current state

The handler is async and the load runs on a thread of its own: reloads never occupy the
event loop or the thread pool, so metrics and probes answer while a slow load runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from recsys.artifacts.catalogue import MAX_BATCH, CatalogueError, validate
from recsys.service.auth import require_token
from recsys.service.errors import InvalidRequest, NotFound, NotReady
from recsys.service.schemas import ErrorResponse
from recsys.service.user_features import FeatureName, FeatureValue

APPLY_WAIT_S = 5.0  # longest a POST waits for its own worker to serve the change it wrote
ItemId = StrictInt | StrictStr


class ReloadResponse(BaseModel):
    status: str
    model_version: str
    previous_version: str | None


class ItemChanges(BaseModel):
    """Changes applied in this order: upserts, then unavailable, available, delete."""

    model_config = ConfigDict(extra="forbid")
    upsert: list[dict[FeatureName, FeatureValue]] = Field(
        [], max_length=MAX_BATCH, description="{item_id, every item feature}: a new item or new attributes")
    unavailable: list[ItemId] = Field([], max_length=MAX_BATCH, description="never served until available again")
    available: list[ItemId] = Field([], max_length=MAX_BATCH)
    delete: list[ItemId] = Field([], max_length=MAX_BATCH)


class ItemsApplied(BaseModel):
    applied: int
    items: int          # the catalogue's size after the batch
    unavailable: int    # items unavailable after the batch


class ItemState(BaseModel):
    item_id: str
    status: str
    attributes: dict


require_admin = require_token("admin_token", "admin endpoints")


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


    @app.post("/admin/items", response_model=ItemsApplied, dependencies=[Depends(require_admin)], tags=["admin"],
              responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
                         422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
    def apply_items(body: ItemChanges, request: Request) -> dict:
        """Validate every change, then apply all of them or none (422 names the first bad entry).
        Answers once this worker serves the changes; every other worker within a poll interval."""
        store, follower = _store(request)
        rec = _serving(request)
        rows = [(f"upsert[{i}]", "upsert", r.get("item_id"), r) for i, r in enumerate(body.upsert)]
        for op in ("unavailable", "available", "delete"):
            rows += [(f"{op}[{i}]", op, item_id, None) for i, item_id in enumerate(getattr(body, op))]
        if len(rows) > MAX_BATCH:
            raise InvalidRequest(f"at most {MAX_BATCH} changes per call (got {len(rows)}); "
                                 "use `recsys catalogue apply` for bigger batches")
        known = store.statuses(str(r[2]) for r in rows if isinstance(r[2], (int, str)))

        def status_of(item_id: str) -> str | None:
            if item_id in known:
                return known[item_id]
            return "available" if item_id in rec.catalogue.items.position else None

        try:
            changes = validate(rows, rec.catalogue.items.features, status_of)
        except CatalogueError as e:
            loc = ["body", *e.where.replace("]", "").split("["), e.field]
            raise InvalidRequest(str(e), [{"loc": loc, "msg": e.reason, "type": "catalogue"}]) from None
        seq = store.apply(changes) if changes else 0
        if changes and not follower.wait(seq, APPLY_WAIT_S):
            raise NotReady(f"changes stored (up to change {seq}) but not yet served by this worker")
        served = _serving(request)
        return {"applied": len(changes), "items": served.item_count,
                "unavailable": len(served.catalogue.unavailable)}

    @app.get("/admin/items/{item_id}", response_model=ItemState, dependencies=[Depends(require_admin)],
             tags=["admin"], responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})
    def item_state(item_id: str, request: Request) -> dict:
        """An item's status and attributes now; 404 when deleted or unknown."""
        store, _ = _store(request)
        rec = _serving(request)
        row = store.item(item_id)
        base = item_id in rec.catalogue.items.position
        if row is None and not base or row is not None and row[0] == "deleted":
            raise NotFound(f"item {item_id!r} is not in the catalogue")
        status, attributes = row if row is not None else ("available", None)
        if attributes is None:
            if not base:
                raise NotFound(f"item {item_id!r} is not in the catalogue served now")
            attributes = rec.catalogue.raw_attributes(item_id)
        return {"item_id": item_id, "status": status, "attributes": attributes}


def _store(request: Request):
    catalogue = request.app.state.catalogue
    if catalogue["store"] is None:
        raise NotReady("no catalogue store: set RECSYS_CATALOGUE_DB to a writable path")
    return catalogue["store"], catalogue["follower"]


def _serving(request: Request):
    rec = request.app.state.recsys.recommender
    if rec is None:
        raise NotReady("model not loaded yet")
    return rec
