"""Metrics (Prometheus), request ids and structured logs.

Every request gets an id (the client's X-Request-ID when it is a sane token, else a new
one), echoed in the response header and written in one JSON access-log line with the
route, status, latency and, for /recommend, the user id: no other personal data (no
client address, no user_features, no bodies). A request whose client went away before any
answer was sent is counted and logged as 499 "client closed request" (as nginx does): not
a server error, and nothing was sent.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from recsys.service.errors import internal_error

log = logging.getLogger("recsys.access")
errors_log = logging.getLogger("recsys.service")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The request being served: a dict the handler can annotate (it runs in a worker thread with
# a copy of this context, so it mutates the same dict rather than setting the variable).
request_context: ContextVar[dict | None] = ContextVar("recsys_request", default=None)
# Probes and scrapes would drown the access log: logged at debug level only.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# Label values of the request metrics: a client may send any method token, so others count as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED = 499  # nginx's "client closed request": the client left before the answer started
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# Request ids: a random prefix per process and a counter. Unique across processes and restarts
# like a uuid4, without reading the OS's random source for every request.
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _new_id_prefix() -> None:  # a forked child must not repeat its parent's ids
    global _ID_PREFIX
    _ID_PREFIX = uuid.uuid4().hex[:16]


os.register_at_fork(after_in_child=_new_id_prefix)


def annotate(**fields) -> None:
    """Add fields (e.g. user_id) to the current request's access-log line."""
    ctx = request_context.get()
    if ctx is not None:
        ctx.update(fields)


class Metrics:
    """The service's metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("recsys_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("recsys_request_duration_seconds", "HTTP request latency by route and status.",
                                 ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("recsys_batch_size",
                                    "Requests per micro-batch (one user-tower call, index search and heads call).",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.overfetched = Histogram("recsys_candidates_overfetched",
                                     "Index candidates fetched beyond the items returned, per request.",
                                     buckets=(0, 10, 50, 100, 200, 500, 1000, 5000, 10000), registry=r)
        self.model_info = Gauge("recsys_model_info", "The model version being served (value 1).", ["version"],
                                registry=r)
        self.reloads = Counter("recsys_reloads", "Model loads and reloads by outcome.", ["outcome"], registry=r)
        self.rejected = Counter("recsys_rejected", "Requests refused before reaching a handler, by reason.",
                                ["reason"], registry=r)
        self.catalogue_changes = Counter("recsys_catalogue_changes", "Catalogue changes applied, by op.", ["op"],
                                         registry=r)
        self.catalogue_items = Gauge("recsys_catalogue_items", "Items in the served catalogue.", registry=r)
        self.catalogue_unavailable = Gauge("recsys_catalogue_unavailable", "Items of the catalogue unavailable now.",
                                           registry=r)
        self.events_accepted = Counter("recsys_events_accepted", "Events logged by POST /events (this worker).",
                                       registry=r)
        self.events_last_seq = Gauge("recsys_events_last_seq", "Sequence number of the last event this worker read "
                                     "from the event log (the log's size, as nothing is ever removed).", registry=r)
        self.online_history_users = Gauge("recsys_online_history_users", "Users with an online history in this "
                                          "worker.", registry=r)
        self.filter_cache_bytes = Gauge("recsys_filter_cache_bytes", "Memory held by prepared filters in this "
                                        "worker (RECSYS_FILTER_CACHE_MB bounds it).", registry=r)
        self.filter_cache_lookups = Gauge("recsys_filter_cache_lookups", "Filter lookups in the prepared-filter "
                                          "cache since this model was loaded, by result (hit: prepared already).",
                                          ["result"], registry=r)
        self.in_flight = Gauge("recsys_in_flight", "Recommend requests being computed.", registry=r)
        self.queued = Gauge("recsys_queued", "Recommend requests waiting for a slot.", registry=r)
        # Bounded: method and route are fixed sets ("other" for unknown paths), status codes few.
        self._request_children: dict[tuple[str, str, int], tuple] = {}

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and observe its latency. The labelled children are looked up once per
        label set (prometheus_client takes a lock and builds the key on every `labels` call)."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            labels = {"method": method, "route": route, "status": str(status)}
            children = self._request_children[key] = (self.requests.labels(**labels), self.latency.labels(**labels))
        children[0].inc()
        children[1].observe(seconds)

    def catalogue(self, size: int, unavailable: int) -> None:
        self.catalogue_items.set(size)
        self.catalogue_unavailable.set(unavailable)

    def events_read(self, last_seq: int, users: int) -> None:
        self.events_last_seq.set(last_seq)
        self.online_history_users.set(users)

    def watch_filters(self, cache: Callable[[], object | None]) -> None:
        """Read the filter cache gauges, at each scrape, from `cache()`: the served model's
        SubsetCache (nbytes, hits, misses), or None before a model is loaded."""
        def read(name: str) -> Callable[[], float]:
            return lambda: float(getattr(cache(), name, 0) or 0)
        self.filter_cache_bytes.set_function(read("nbytes"))
        self.filter_cache_lookups.labels(result="hit").set_function(read("hits"))
        self.filter_cache_lookups.labels(result="miss").set_function(read("misses"))

    def serving(self, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any request fields."""

    FIELDS = ("request_id", "method", "route", "path", "status", "latency_ms", "user_id", "model_version")

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        ctx = request_context.get()
        if ctx and "request_id" in ctx and record.name != log.name:
            out["request_id"] = ctx["request_id"]  # errors logged while serving a request
        for f in self.FIELDS:
            if hasattr(record, f):
                out[f] = getattr(record, f)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        # orjson: one access line per request, ~5x cheaper than json.dumps
        return orjson.dumps(out, default=str).decode()


JsonFormatter.converter = time.gmtime


class TextFormatter(logging.Formatter):
    """One readable line: time, level, message; access lines add latency and request id."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname.lower():<7} {record.getMessage()}"
        if hasattr(record, "latency_ms"):
            line += f"  {record.latency_ms:.1f} ms  id {record.request_id}"
            if hasattr(record, "user_id"):
                line += f"  user {record.user_id}"
        else:
            ctx = request_context.get()
            if ctx and "request_id" in ctx:
                line += f"  id {ctx['request_id']}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def resolve_format(fmt: str) -> str:
    """`auto` -> text when stderr is a terminal, json otherwise."""
    if fmt != "auto":
        return fmt
    try:
        return "text" if sys.stderr.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def logging_config(level: str = "info", fmt: str = "auto") -> dict:
    """A dictConfig for uvicorn's and the service's loggers (uvicorn's own access log is off)."""
    formatter = {"()": JsonFormatter} if resolve_format(fmt) == "json" else {"()": TextFormatter}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": ["stderr"], "level": level, "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "recsys")},
    }


class RequestContext:
    """ASGI middleware: request id, access log and request metrics for every HTTP request.

    The outermost layer of the app: whatever a layer inside raises (a bug) is logged here with
    the request id and answered as a JSON 500 that carries the X-Request-ID header too.
    """

    def __init__(self, app, metrics: Metrics, routes: frozenset[str]):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        rid = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                text = value.decode("latin-1")
                rid = text if _REQUEST_ID.fullmatch(text) else None
                break
        rid = rid or new_request_id()
        path = scope.get("path", "")
        route = path if path in self.routes else "other"  # bounded label values
        ctx = {"request_id": rid}
        token = request_context.set(ctx)
        status, started, disconnected = 500, False, False

        async def receive_watching():
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message = dict(message, headers=[*message.get("headers", ()), (b"x-request-id", rid.encode())])
            await send(message)

        try:
            await self.app(scope, receive_watching, send_with_id)
            if disconnected and not started:
                status = CLIENT_CLOSED
        except Exception:
            errors_log.exception("unhandled error on %s %s", scope.get("method", ""), path[:200])
            if started:  # half a response is out: the server can only drop the connection
                raise
            await internal_error()(scope, receive, send_with_id)
        finally:
            request_context.reset(token)
            elapsed = time.perf_counter() - start
            method = scope.get("method", "")
            self.metrics.request_done(method if method in METHODS else "other", route, status, elapsed)
            extra = {"request_id": rid, "method": method, "route": route, "path": path[:200],
                     "status": status, "latency_ms": round(elapsed * 1000, 3)}
            for key in ("user_id", "model_version"):
                if key in ctx:
                    extra[key] = ctx[key]
            level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
            closed = " client closed request" if status == CLIENT_CLOSED else ""
            log.log(level, "%s %s %d%s", method, path[:200], status, closed, extra=extra)
