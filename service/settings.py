"""Service settings: every knob is an environment variable (RECSYS_<NAME>) and a CLI flag.

Each field is declared once, here: its type and bounds, its default, a one-line description
(the `recsys serve --help` text, generated from these fields) and, beside it, the trade-off.
The README's settings table is checked against these fields by a test.

The exceptions are the tokens (admin, events): environment only, because a command line is
visible to every local user (`ps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_ADMIN_TOKEN_LENGTH = 16
ENV_ONLY = frozenset({"admin_token", "events_token"})  # secrets: never a flag
ENV_PREFIX = "RECSYS_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    artifacts: Path = Field(Path("var/artifacts"), description="artifact root holding the model versions")
    # Version to serve and to reload. Default: the one ARTIFACTS/current names (switched by
    # `recsys build-index`), else the newest complete one with an index. Pinning a version
    # is how to roll back; a pinned service reloads the same version (re-verified).
    version: str | None = Field(None, description="version to serve and to reload; unset: the one ARTIFACTS/current "
                                 "names, else the newest complete one with an index")
    # 127.0.0.1 keeps the service local; 0.0.0.0 (as in the container) exposes it.
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8000, ge=0, le=65535, description="port")
    # Largest k a client may ask for. Each extra item costs heads work and response bytes.
    max_k: int = Field(100, ge=1, le=10_000, description="largest k accepted")
    # Candidates taken from the index before re-scoring (K' = max(k, candidates)). More
    # candidates let the CTR/CVR heads find better items further down the similarity list,
    # at a linear cost in heads work per request. 200 rather than 100 raised the true
    # NDCG@50 of served lists by 3-4 % on three simulated shops (8,000 items) for +0.05 ms
    # of model work per request; 300 and 500 gained nothing more.
    candidates: int = Field(200, ge=1, le=100_000, description="index candidates re-scored per request")
    # IVF lists probed per query: higher recall, slower queries. Ignored by other formats.
    nprobe: int = Field(32, ge=1, description="IVF lists probed per query")
    # HNSW beam width: higher recall, slower queries. Ignored by other formats.
    ef_search: int = Field(64, ge=1, description="HNSW beam width")
    # Memory per worker for recurring filters' matching rows and a copy of their vectors (about
    # 140 bytes a row at 32 dims): a filter seen again is searched over its own rows near the
    # query (~0.2 ms) instead of through the index with a bitmap (1-2 ms at a 5 % share on 1M
    # items). 0 turns it off. Shops with many distinct mid-size filters need more.
    filter_cache_mb: int = Field(128, ge=0, le=1_000_000, description="memory for recurring filters' prepared "
                                                                      "rows, MB per worker (0: off)")
    # Item attributes every /recommend item carries when the request names no `fields`
    # (comma-separated, e.g. "item_category,item_price"): clients need not join the catalogue,
    # but every item's JSON grows by its attributes. A request's `fields` replaces this list.
    default_fields: str = Field("", description="item attributes returned with every item unless a request "
                                                "names its own fields (comma-separated)")
    # What computes the user embedding: the tower's exported weights in numpy (~30x less
    # per-call overhead than a TensorFlow call, kept equal to it by a parity test) or the
    # SavedModel itself (the reference; ~1 ms per call).
    user_tower: Literal["numpy", "savedmodel"] = Field(
        "numpy", description="user embedding by the tower's numpy weights or by the SavedModel")
    # info writes one access line per request (probes and scrapes only at debug); warning
    # keeps only problems, for hot paths where log volume costs.
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field("info", description="log level")
    # json: one JSON object per line (request id, route, status, latency, user id), for log
    # pipelines; text: one readable line per request (status, latency, request id) for a
    # person; auto: text when stderr is a terminal, JSON otherwise, so a container or a
    # redirected log gets JSON without asking and a terminal is not flooded with it.
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: text on a terminal, JSON lines otherwise; json; text")

    # Micro-batching (service/batcher.py): concurrent requests share one user-tower call, one
    # index search and one heads call. Largest batch: bigger batches amortise more per-call
    # overhead, but every request in a batch waits for the whole batch to be computed.
    batch_size: int = Field(32, ge=1, le=1024, description="largest micro-batch of concurrent requests")
    # Longest a request waits for others to join its batch (milliseconds), and only while
    # other requests are on their way: a lone request never waits. Longer = fuller batches
    # under load, at up to this much added latency; 0 = batch only what is already queued.
    batch_delay_ms: float = Field(1.0, ge=0, le=100, description="longest wait (ms) for a batch to fill, only while "
                                                                  "other requests are on their way")
    # Longest a request waits for the batcher to compute its answer (seconds) before a 503:
    # the bound on a stuck or dead model call. Longer tolerates slower batches (large k, the
    # savedmodel tower, an overloaded host); shorter frees waiting clients sooner, but a batch
    # slower than this fails every request in it.
    compute_timeout: float = Field(5.0, gt=0, le=300, description="seconds a request waits for its answer from the "
                                                                  "batcher before a 503")
    # Threads the model work of one batch may use (FAISS's OpenMP, numpy's BLAS), per worker.
    # A batch of a few dozen queries gains little from more, and idle OpenMP threads spin after
    # every search on the cores the event loop needs: on two cores, 1 served more requests per
    # second than 2 (docs/PERFORMANCE.md). Raise it for large k or candidates on many cores.
    model_threads: int = Field(1, ge=1, le=256, description="threads for one batch's model work (FAISS, BLAS), "
                                                            "per worker")
    # Server processes sharing the port, each with its own copy of the model and index (RSS
    # grows by that much per worker). Python serves HTTP on one core per process: on two cores,
    # with model_threads 1, two workers served 2.1x the requests/s of one at 32 connections,
    # with a lower p99 (docs/PERFORMANCE.md). One is the default because memory doubles (about
    # 0.8 GB per worker at 1M items, 4.3 GB at 10M); use one worker per core where memory
    # allows. More workers
    # than cores only add memory and context switches.
    workers: int = Field(1, ge=1, le=64, description="server processes sharing the port, each with its own "
                                                     "model copy")

    # Backpressure on POST /recommend, per worker. Requests admitted at once (computing or
    # waiting for their batch): at least batch_size, or batches can never fill; past what the
    # cores keep up with, each extra one only adds latency to all of them.
    max_in_flight: int = Field(64, ge=1, le=1024, description="recommend requests admitted at once, per worker")
    # Requests waiting for a slot. Beyond in-flight + queue a request gets 503 + Retry-After
    # at once. A longer queue absorbs bursts but every queued request waits longer.
    max_queue: int = Field(32, ge=0, le=100_000, description="requests waiting for a slot before a 503")
    # Longest wait in the queue (seconds) before a 503: the bound on queueing latency.
    queue_timeout: float = Field(1.0, gt=0, le=60, description="seconds a request may wait for a slot")
    # A 503 for an overloaded /recommend, answered in the HTTP protocol before any parsing of
    # the body: keep-alive lets the client retry on the same connection; close makes every
    # retry pay a new connection, which slows clients that ignore Retry-After but costs the
    # service an accept per refusal (docs/PERFORMANCE.md measures both).
    shed_connection: Literal["keep-alive", "close"] = Field(
        "keep-alive", description="after an overloaded 503: keep the connection open or close it")

    # Hostile input. Largest request body (bytes), checked before parsing: a request is a few
    # hundred bytes, and a large limit only lets a client make the service parse megabytes.
    max_body_bytes: int = Field(65_536, ge=1_024, le=16 * 1024 * 1024, description="largest request body (bytes)")
    # Largest POST /admin/items body: a full batch of 10,000 upserts is ~1-2 MB; it is behind
    # the admin token, but still parsed whole in memory.
    max_admin_body_bytes: int = Field(4 * 1024 * 1024, ge=1_024, le=256 * 1024 * 1024,
                                      description="largest POST /admin/items body (bytes)")
    # Deepest JSON nesting accepted (a valid request nests 2 deep); deeper bodies get 422
    # before the JSON parser recurses into them.
    max_json_depth: int = Field(8, ge=2, le=256, description="deepest JSON nesting accepted")

    # A user the feature store does not know and who sent no user_features: "none" answers
    # 404; "popular" answers the most-interacted items of the training data (ranked by the
    # share of users who interacted with each, no model scores), flagged `"fallback": "popular"`.
    # Popular items keep clients simple but hide a wrong user id behind a plausible answer.
    unknown_user_fallback: Literal["none", "popular"] = Field(
        "none", description="unknown user without user_features: 404 (none) or the popular items")

    # The live catalogue store (artifacts/catalogue.py), written by POST /admin/items and
    # `recsys catalogue apply`, followed by every worker. Unset: ARTIFACTS/catalogue.db. It must
    # be writable for POST /admin/items (a read-only artifact volume needs a path elsewhere),
    # and on a local disk: SQLite is not safe on a network filesystem.
    catalogue_db: Path | None = Field(None, description="catalogue store (SQLite); unset: ARTIFACTS/catalogue.db")
    # How often every worker polls the store for changes (milliseconds). A poll without news is
    # one primary-key lookup; shorter = changes served sooner, a little more idle work.
    catalogue_poll_ms: float = Field(100.0, ge=5, le=10_000, description="milliseconds between polls of the "
                                                                          "catalogue store for changes")

    # The event log (artifacts/events.py), written by POST /events, followed by every worker
    # for the online histories, exported for training (`recsys events export`). Unset:
    # ARTIFACTS/events.db. Like the catalogue store: writable, on a local disk.
    events_db: Path | None = Field(None, description="event log (SQLite); unset: ARTIFACTS/events.db")
    # How often every worker polls the event log (milliseconds); the worker that accepted an
    # event polls at once. Shorter = other workers see events sooner, a little more idle work.
    events_poll_ms: float = Field(100.0, ge=5, le=10_000, description="milliseconds between polls of the event "
                                                                      "log for new events")
    # Largest POST /events body: a full batch of 10,000 events is ~0.8-1 MB.
    max_events_body_bytes: int = Field(2 * 1024 * 1024, ge=1_024, le=256 * 1024 * 1024,
                                       description="largest POST /events body (bytes)")
    # Online histories (service/online_history.py), per worker, fed by the event log: each
    # user's latest clicked or converted items join the stored history of a model whose user
    # tower takes one. Items kept per user: more than the tower pools (its history_length)
    # buys nothing; fewer cuts the events' effect short.
    online_history_length: int = Field(50, ge=1, le=10_000, description="items kept per user in the online history")
    # Events older than this (seconds, by their timestamp) are dropped: longer keeps a
    # returning user's session alive, but the next training run holds those events anyway.
    online_history_max_age_s: float = Field(86_400.0, gt=0, le=365 * 86_400,
                                            description="seconds an event counts in the online history")
    # Users kept (least recently active dropped first): memory is about 150 bytes per item
    # kept, so 100,000 users of 50 items each is ~0.75 GB at worst per worker (most users log
    # far fewer events a day); fewer users forget the quieter ones sooner.
    online_history_users: int = Field(100_000, ge=1, le=100_000_000,
                                      description="users kept in the online history (least recently active dropped)")

    # Bearer token for POST /admin/reload. Unset = the admin endpoint is off (404). At least
    # 16 characters. Environment only (RECSYS_ADMIN_TOKEN): no flag, see above.
    admin_token: SecretStr | None = Field(None, exclude=True, description="bearer token for /admin/reload and /admin/items")
    # Bearer token for POST /events, the same rules: unset = off (404); environment only
    # (RECSYS_EVENTS_TOKEN). A token of its own: whatever sends events needs no admin rights.
    events_token: SecretStr | None = Field(None, exclude=True, description="bearer token for POST /events")

    # After SIGTERM: seconds /readyz answers 503 while requests are still served, so a load
    # balancer stops routing here before the listener closes. 0 = stop accepting at once;
    # longer = fewer refused connections during a rollout, slower stops.
    drain_seconds: float = Field(2.0, ge=0, le=300, description="after SIGTERM, seconds /readyz is 503 before the "
                                                                "listener closes")
    # Then: seconds in-flight requests get to finish before they are cancelled. Longer lets
    # slow requests complete; shorter bounds how long a stop can take.
    shutdown_timeout: float = Field(10.0, gt=0, le=3600, description="seconds in-flight requests get to finish on "
                                                                       "stop")

    @field_validator("admin_token", "events_token", mode="before")
    @classmethod
    def _token(cls, v):
        if v is None or (isinstance(v, str) and v == ""):
            return None  # an empty variable means "not configured"
        return v

    @field_validator("admin_token", "events_token")
    @classmethod
    def _strong_token(cls, v: SecretStr | None):
        if v is not None:
            token = v.get_secret_value()
            if len(token) < MIN_ADMIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable() \
                    or any(c.isspace() for c in token):
                raise ValueError(f"must be at least {MIN_ADMIN_TOKEN_LENGTH} printable ASCII characters "
                                 "without spaces")
        return v

    @property
    def catalogue_path(self) -> Path:
        from recsys.artifacts.catalogue import DATABASE

        return self.catalogue_db if self.catalogue_db is not None else self.artifacts / DATABASE

    @property
    def events_path(self) -> Path:
        from recsys.artifacts.events import DATABASE

        return self.events_db if self.events_db is not None else self.artifacts / DATABASE


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def shown_default(field: str) -> str:
    """A field's default as help texts and the README show it: `unset`, `1` for 1.0."""
    value = Settings.model_fields[field].default
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
