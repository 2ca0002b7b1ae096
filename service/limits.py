"""Limits that keep the service's latency and memory bounded whatever clients send.

    BodyLimit     a body larger than max_body_bytes -> 413 before it is read whole; JSON nested
                  deeper than max_json_depth -> 422 before the parser recurses into it; a
                  Transfer-Encoding other than chunked -> 501 (the server would read it as chunked)
    Admission     how many requests are admitted (computing + waiting) against the capacity
    Backpressure  at most max_in_flight requests computing and max_queue waiting (each at
                  most queue_timeout seconds); anything beyond -> 503 + Retry-After at once

Both are plain ASGI middleware, so they answer before FastAPI parses or validates anything.
While Admission is full, service/shedding.py refuses earlier still, in the HTTP protocol.
Probes, metrics and admin routes are not subject to backpressure, so they answer under load.
"""

from __future__ import annotations

import asyncio

from recsys.service.batcher import Arrivals
from recsys.service.domain import InvalidRequest, RequestError
from recsys.service.errors import (Overloaded, PayloadTooLarge, ServiceError, UnsupportedTransferCoding,
                                   response_for)
from recsys.service.observability import Metrics

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def _reply(exc: ServiceError | RequestError, scope, receive, send) -> None:
    await response_for(exc)(scope, receive, send)


def json_depth(body: bytes, limit: int) -> bool:
    """Whether `body` nests arrays/objects deeper than `limit` (brackets in strings don't count)."""
    if body.count(b"[") + body.count(b"{") <= limit:  # fast path: a normal request
        return False
    depth, in_string, escaped = 0, False, False
    for c in body:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif c in (0x5D, 0x7D):
            depth -= 1
    return False


class BodyLimit:
    """Read the whole body (bounded), check its size and nesting, then hand it to the app."""

    def __init__(self, app, max_bytes: int, max_depth: int, metrics: Metrics,
                 per_path: dict[str, int] | None = None):
        self.app = app
        self.default_max_bytes = max_bytes
        self.per_path = per_path or {}  # routes with a limit of their own (a batch of catalogue changes)
        self.max_depth = max_depth
        self.metrics = metrics

    def _too_large(self, limit: int) -> PayloadTooLarge:
        self.metrics.rejected.labels(reason="body_too_large").inc()
        return PayloadTooLarge(f"request body larger than {limit} bytes")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            # httptools decodes any coding list ending in chunked as plain chunked: refuse the rest.
            if name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                text = value.decode("latin-1")[:100]
                return await _reply(UnsupportedTransferCoding(f"Transfer-Encoding {text!r} is not supported "
                                                              "(only chunked)"), scope, receive, send)
        if scope.get("method") not in BODY_METHODS:
            return await self.app(scope, receive, send)
        limit = self.per_path.get(scope.get("path"), self.default_max_bytes)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _reply(InvalidRequest("Content-Length is not a number"), scope, receive, send)
                if declared > limit:
                    return await _reply(self._too_large(limit), scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # chunked or lying about its length
                return await _reply(self._too_large(limit), scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth(body, self.max_depth):
            self.metrics.rejected.labels(reason="too_deep").inc()
            return await _reply(InvalidRequest(f"body nests deeper than {self.max_depth} levels"),
                                scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)


class Admission:
    """Requests admitted (computing + waiting for a slot) against `capacity`; shared by
    Backpressure, which counts, and the HTTP protocol's early shedding, which reads."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.admitted = 0  # only touched on the event loop, so no lock
        self.refusal = f"overloaded: {capacity} requests already in flight or queued; retry later"

    def full(self) -> bool:
        return self.admitted >= self.capacity


class Backpressure:
    """A bounded number of requests computing and waiting on `paths`; beyond it, 503 at once."""

    def __init__(self, app, paths: frozenset[str], max_in_flight: int, max_queue: int, queue_timeout: float,
                 metrics: Metrics, arrivals: Arrivals | None = None, admission: Admission | None = None):
        self.app = app
        self.arrivals = arrivals or Arrivals()
        self.paths = paths
        self.admission = admission or Admission(max_in_flight + max_queue)
        self.queue_timeout = queue_timeout
        self.metrics = metrics
        self.slots = asyncio.Semaphore(max_in_flight)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            return await self.app(scope, receive, send)
        admission = self.admission
        if admission.full():
            self.metrics.rejected.labels(reason="overloaded").inc()
            return await _reply(Overloaded(admission.refusal), scope, receive, send)
        admission.admitted += 1
        try:
            self.metrics.queued.inc()
            try:
                if self.slots.locked():
                    await asyncio.wait_for(self.slots.acquire(), self.queue_timeout)
                else:
                    await self.slots.acquire()  # free: no timer task to set up
            except asyncio.TimeoutError:
                self.metrics.rejected.labels(reason="queue_timeout").inc()
                return await _reply(Overloaded(f"overloaded: no slot free within {self.queue_timeout:g} s; "
                                               "retry later"), scope, receive, send)
            finally:
                self.metrics.queued.dec()
            self.metrics.in_flight.inc()
            self.arrivals.admit(scope)
            try:
                await self.app(scope, receive, send)
            finally:
                self.arrivals.arrive(scope)
                self.metrics.in_flight.dec()
                self.slots.release()
        finally:
            admission.admitted -= 1
