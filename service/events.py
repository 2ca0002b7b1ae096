"""POST /events: users' clicks and conversions, behind a bearer token from RECSYS_EVENTS_TOKEN;
off (404) without one.

    {"events": [{"user_id", "item_id", "event": "click"|"conversion", "timestamp"?}, ...]}
    -> 200 {"accepted": n}   every event on disk in the event log (artifacts/events.py)
    -> 422 naming the first bad event ("events[3].event: ..."); nothing logged

The batch is validated whole, then written in one transaction on a worker thread (an fsync
never holds the event loop). The answer comes once this worker's online history holds the
batch (or after ONLINE_WAIT_S: the batch is logged either way); every other worker reads it
within a poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from recsys.artifacts.events import COLUMNS, EVENTS, MAX_BATCH, MAX_ID_LENGTH, EventError, validate
from recsys.service.auth import require_token
from recsys.service.errors import InvalidRequest, NotReady
from recsys.service.schemas import ErrorResponse

log = logging.getLogger("recsys.service")
ONLINE_WAIT_S = 1.0  # longest a POST waits for its own worker's online history to hold the batch

require_events = require_token("events_token", "POST /events")

_EVENT_SCHEMA = {
    "type": "object",
    "required": ["user_id", "item_id", "event"],
    "additionalProperties": False,
    "properties": {
        "user_id": {"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}, {"type": "integer"}]},
        "item_id": {"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}, {"type": "integer"}]},
        "event": {"enum": list(EVENTS), "description": "both are positive interactions; a conversion implies "
                                                       "the click"},
        "timestamp": {"type": "number", "description": "epoch seconds; default: when the service accepts it"},
    },
}


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"events": [
        {"user_id": "42", "item_id": "1001", "event": "click", "timestamp": 1_700_000_000},
        {"user_id": "42", "item_id": "1001", "event": "conversion"}]}})
    # Checked by artifacts/events.validate, so every error names its event the same way.
    events: list[Any] = Field(..., description=f"at most {MAX_BATCH:,} events ({', '.join(COLUMNS)}), "
                                                "logged all or none", json_schema_extra={"items": _EVENT_SCHEMA})


class EventsAccepted(BaseModel):
    accepted: int


def install(app: FastAPI) -> None:
    @app.post("/events", response_model=EventsAccepted, dependencies=[Depends(require_events)], tags=["events"],
              responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
                         413: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
                         503: {"model": ErrorResponse}})
    async def post_events(body: EventBatch, request: Request) -> dict:
        """Log users' clicks and conversions, all or none (422 names the first bad event). They
        join the users' histories in every worker within a second and the next training run
        once exported (`recsys events export`)."""
        events = request.app.state.events
        if events["log"] is None:
            raise NotReady("no event log: set RECSYS_EVENTS_DB to a writable path")
        try:  # on a thread too: 10,000 events take milliseconds to check
            batch = await asyncio.to_thread(validate, body.events, time.time())
        except EventError as e:
            loc = ["body", *e.where.replace("]", "").split("["), *([e.field] if e.field else [])]
            raise InvalidRequest(str(e), [{"loc": loc, "msg": e.reason, "type": "event"}]) from None
        if not batch:
            return {"accepted": 0}

        def write() -> int:
            seq = events["log"].append(batch)
            events["follower"].wait(seq, ONLINE_WAIT_S)  # logged either way: a slow poll is no failure
            return seq

        try:
            await asyncio.to_thread(write)
        except (sqlite3.Error, OSError) as e:
            log.error("writing %d events failed: %s", len(batch), e)
            raise NotReady(f"events not logged ({e}); retry") from None
        events["accepted"](len(batch))
        return {"accepted": len(batch)}
