"""Service settings: every knob is an environment variable (RECSYS_<NAME>) and a CLI flag.

The one exception is the admin token: environment only, because a command line is visible
to every local user (`ps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_ADMIN_TOKEN_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    artifacts: Path = Field(Path("var/artifacts"), description="Artifact root holding model versions.")
    # Version to serve and to reload. Default: the one ARTIFACTS/current names (switched by
    # `recsys build-index`), else the newest complete one with an index. Pinning a version
    # is how to roll back; a pinned service reloads the same version (re-verified).
    version: str | None = Field(None, description="Version to serve; default: ARTIFACTS/current.")
    # 127.0.0.1 keeps the service local; 0.0.0.0 (as in the container) exposes it.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Largest k a client may ask for. Each extra item costs heads work and response bytes.
    max_k: int = Field(100, ge=1, le=10_000)
    # Candidates taken from the index before re-scoring (K' = max(k, candidates)). More
    # candidates let the CTR/CVR heads find better items further down the similarity list,
    # at a linear cost in heads work per request. 200 rather than 100 raised the true
    # NDCG@50 of served lists by 3-4 % on three simulated shops (8,000 items) for +0.05 ms
    # of model work per request; 300 and 500 gained nothing more.
    candidates: int = Field(200, ge=1, le=100_000)
    # IVF lists probed per query: higher recall, slower queries. Ignored by other formats.
    nprobe: int = Field(32, ge=1)
    # HNSW beam width: higher recall, slower queries. Ignored by other formats.
    ef_search: int = Field(64, ge=1)
    # What computes the user embedding: the tower's exported weights in numpy (~30x less
    # per-call overhead than a TensorFlow call, kept equal to it by a parity test) or the
    # SavedModel itself (the reference; ~1 ms per call).
    user_tower: Literal["numpy", "savedmodel"] = "numpy"
    # info writes one access line per request (probes and scrapes only at debug); warning
    # keeps only problems, for hot paths where log volume costs.
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # json: one JSON object per line (request id, route, status, latency, user id), for log
    # pipelines; text: plain lines for a terminal.
    log_format: Literal["json", "text"] = "json"

    # Micro-batching (service/batcher.py): concurrent requests share one user-tower call, one
    # index search and one heads call. Largest batch: bigger batches amortise more per-call
    # overhead, but every request in a batch waits for the whole batch to be computed.
    batch_size: int = Field(32, ge=1, le=1024)
    # Longest a request waits for others to join its batch (milliseconds), and only while
    # other requests are on their way: a lone request never waits. Longer = fuller batches
    # under load, at up to this much added latency; 0 = batch only what is already queued.
    batch_delay_ms: float = Field(1.0, ge=0, le=100)
    # Server processes sharing the port, each with its own copy of the model and index (RSS
    # grows by that much per worker). On this kind of machine one process's event loop (HTTP
    # parsing, validation, JSON) saturates one core, so 2 workers on 2 cores serve more
    # requests per second; more workers than cores only add memory and context switches.
    workers: int = Field(1, ge=1, le=64)

    # Backpressure on POST /recommend, per worker. Requests admitted at once (computing or
    # waiting for their batch): at least batch_size, or batches can never fill; past what the
    # cores keep up with, each extra one only adds latency to all of them.
    max_in_flight: int = Field(64, ge=1, le=1024)
    # Requests waiting for a slot. Beyond in-flight + queue a request gets 503 + Retry-After
    # at once. A longer queue absorbs bursts but every queued request waits longer.
    max_queue: int = Field(32, ge=0, le=100_000)
    # Longest wait in the queue (seconds) before a 503: the bound on queueing latency.
    queue_timeout: float = Field(1.0, gt=0, le=60)

    # Hostile input. Largest request body (bytes), checked before parsing: a request is a few
    # hundred bytes, and a large limit only lets a client make the service parse megabytes.
    max_body_bytes: int = Field(65_536, ge=1_024, le=16 * 1024 * 1024)
    # Deepest JSON nesting accepted (a valid request nests 2 deep); deeper bodies get 422
    # before the JSON parser recurses into them.
    max_json_depth: int = Field(8, ge=2, le=256)

    # A user the feature store does not know and who sent no user_features: "none" answers
    # 404; "popular" answers the most-interacted items of the training data (ranked by the
    # share of users who interacted with each, no model scores), flagged `"fallback": "popular"`.
    # Popular items keep clients simple but hide a wrong user id behind a plausible answer.
    unknown_user_fallback: Literal["none", "popular"] = "none"

    # Bearer token for POST /admin/reload. Unset = the admin endpoint is off (404). At least
    # 16 characters. Environment only (RECSYS_ADMIN_TOKEN): no flag, see above.
    admin_token: SecretStr | None = Field(None, exclude=True)

    # After SIGTERM: seconds /readyz answers 503 while requests are still served, so a load
    # balancer stops routing here before the listener closes. 0 = stop accepting at once;
    # longer = fewer refused connections during a rollout, slower stops.
    drain_seconds: float = Field(2.0, ge=0, le=300)
    # Then: seconds in-flight requests get to finish before they are cancelled. Longer lets
    # slow requests complete; shorter bounds how long a stop can take.
    shutdown_timeout: float = Field(10.0, gt=0, le=3600)

    @field_validator("admin_token", mode="before")
    @classmethod
    def _token(cls, v):
        if v is None or (isinstance(v, str) and v == ""):
            return None  # an empty variable means "not configured"
        return v

    @field_validator("admin_token")
    @classmethod
    def _strong_token(cls, v: SecretStr | None):
        if v is not None:
            token = v.get_secret_value()
            if len(token) < MIN_ADMIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable() \
                    or any(c.isspace() for c in token):
                raise ValueError(f"must be at least {MIN_ADMIN_TOKEN_LENGTH} printable ASCII characters "
                                 "without spaces")
        return v
