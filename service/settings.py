"""Service settings: every knob is an environment variable (RECSYS_<NAME>) and a CLI flag."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    artifacts: Path = Field(Path("var/artifacts"), description="Artifact root holding model versions.")
    version: str | None = Field(None, description="Version to serve; default: newest complete one with an index.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Largest k a client may ask for. Each extra item costs heads work and response bytes.
    max_k: int = Field(100, ge=1, le=10_000)
    # Candidates taken from the index before re-scoring (K' = max(k, candidates)). More
    # candidates let the CTR/CVR heads find better items further down the similarity list,
    # at a linear cost in heads work per request.
    candidates: int = Field(100, ge=1, le=100_000)
    # IVF lists probed per query: higher recall, slower queries. Ignored by other formats.
    nprobe: int = Field(32, ge=1)
    # HNSW beam width: higher recall, slower queries. Ignored by other formats.
    ef_search: int = Field(64, ge=1)
    log_level: str = "info"
